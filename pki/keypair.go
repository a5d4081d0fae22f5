package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// KeyPair is the certificate and key of the public (wss://) listener,
// loaded from files and reloadable without restart.
//
// Unlike Material it carries no cluster identity and trusts no CA: the
// public certificate is usually issued by a public CA (ACME and the like)
// for browsers, so only what the server itself can check is checked (the
// key matches and the leaf is within its validity period). The current
// pair sits behind an atomic pointer and the config's GetCertificate reads
// it per handshake, so Reload takes effect for the next connection while
// established ones keep the certificate they were served.
// A KeyPair is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair reads certFile (leaf first, then any intermediates, PEM) and
// keyFile (PKCS#8, SEC 1 or PKCS#1 PEM). Errors name the file at fault and
// never quote key material.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	c, err := loadKeyPair(certFile, keyFile, time.Now())
	if err != nil {
		return nil, err
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	k.cur.Store(c)
	return k, nil
}

// Reload re-reads the files LoadKeyPair was given and, if they pass the
// same checks, serves them from the next handshake on. On error the
// previous pair stays in use: a half-written renewal must not take the
// public listener down.
func (k *KeyPair) Reload() error {
	c, err := loadKeyPair(k.certFile, k.keyFile, time.Now())
	if err != nil {
		return err
	}
	k.cur.Store(c)
	return nil
}

// Files returns the certificate and key file names, for watching them.
func (k *KeyPair) Files() (cert, key string) { return k.certFile, k.keyFile }

// Leaf is the current parsed leaf certificate (for banners and logs).
func (k *KeyPair) Leaf() *x509.Certificate { return k.cur.Load().Leaf }

// GetCertificate returns the current pair; it is the tls.Config hook.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

// ServerConfig is the public listener's TLS config: TLS 1.2 or later
// (browsers and ordinary WebSocket clients still negotiate 1.2), the
// current pair per handshake, and HTTP/1.1 only in ALPN because a
// WebSocket upgrade needs an HTTP/1.1 connection to hijack.
func (k *KeyPair) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: k.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

func loadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, _, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("pki: certificate %s is not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("pki: certificate %s expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// readPair reads a certificate chain and its private key and checks that
// they belong together; validity is the caller's to check. It also
// answers the parsed chain, leaf first.
func readPair(certFile, keyFile string) (*tls.Certificate, []*x509.Certificate, error) {
	chain, err := readCerts(certFile)
	if err != nil {
		return nil, nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	leaf := chain[0]
	if !keyMatches(leaf, key) {
		return nil, nil, fmt.Errorf("pki: key %s does not match certificate %s", keyFile, certFile)
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return &tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: leaf}, chain, nil
}
