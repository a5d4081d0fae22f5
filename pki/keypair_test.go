package pki_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// writeSelfSigned writes an RSA (PKCS#1) self-signed server certificate
// for 127.0.0.1 valid in [notBefore, notAfter], the kind of public
// certificate that carries no nodalmerge identity.
func writeSelfSigned(t *testing.T, dir string, notBefore, notAfter time.Time) (cert, key string, c *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "public.example"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "public.pem"), filepath.Join(dir, "public-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, c
}

// publicHandshake dials a server using cfg over 127.0.0.1 and returns the
// serial of the certificate it presented.
func publicHandshake(t *testing.T, server *tls.Config, client *tls.Config) (*big.Int, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		c := tls.Server(raw, server)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.Handshake()
		_ = c.Close()
		done <- err
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	var serial *big.Int
	if err == nil {
		serial = c.ConnectionState().PeerCertificates[0].SerialNumber
		_ = c.Close()
	}
	<-done
	return serial, err
}

func TestKeyPairServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key, first := writeSelfSigned(t, dir, now.Add(-time.Hour), now.Add(time.Hour))
	kp, err := pki.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if c, k := kp.Files(); c != cert || k != key {
		t.Fatalf("Files = %s, %s", c, k)
	}
	server := kp.ServerConfig()
	if server.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x, want TLS 1.2", server.MinVersion)
	}
	trust := func(c *x509.Certificate) *tls.Config {
		pool := x509.NewCertPool()
		pool.AddCert(c)
		return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}

	// TLS 1.2 clients are served; TLS 1.1 ones are not.
	tls12 := trust(first)
	tls12.MaxVersion = tls.VersionTLS12
	if serial, err := publicHandshake(t, server, tls12); err != nil || serial.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("TLS 1.2 handshake: serial %v, %v", serial, err)
	}
	tls11 := trust(first)
	tls11.MinVersion, tls11.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := publicHandshake(t, server, tls11); err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}

	// A renewed pair on disk is served by the same config after Reload.
	_, _, second := writeSelfSigned(t, dir, now.Add(-time.Hour), now.Add(2*time.Hour))
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	if kp.Leaf().SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatal("Reload kept the old leaf")
	}
	if serial, err := publicHandshake(t, server, trust(second)); err != nil || serial.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after reload: serial %v (want %v), %v", serial, second.SerialNumber, err)
	}
}

func TestKeyPairRefusesBadFilesAndKeepsOld(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key, good := writeSelfSigned(t, dir, now.Add(-time.Hour), now.Add(time.Hour))
	kp, err := pki.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	goodCert, _ := os.ReadFile(cert)
	goodKey, _ := os.ReadFile(key)
	restore := func() {
		t.Helper()
		if err := os.WriteFile(cert, goodCert, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, goodKey, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	otherDir := t.TempDir()
	_, otherKey, _ := writeSelfSigned(t, otherDir, now.Add(-time.Hour), now.Add(time.Hour))
	expiredDir := t.TempDir()
	expiredCert, expiredKey, _ := writeSelfSigned(t, expiredDir, now.Add(-2*time.Hour), now.Add(-time.Hour))
	futureDir := t.TempDir()
	futureCert, futureKey, _ := writeSelfSigned(t, futureDir, now.Add(time.Hour), now.Add(2*time.Hour))

	for _, tc := range []struct {
		name      string
		cert, key []byte // nil: keep
		want      string
	}{
		{"garbage cert", []byte("not pem"), nil, cert},
		{"garbage key", nil, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), key},
		{"key of another cert", nil, mustRead(t, otherKey), "does not match"},
		{"expired", mustRead(t, expiredCert), mustRead(t, expiredKey), "expired"},
		{"not yet valid", mustRead(t, futureCert), mustRead(t, futureKey), "not valid before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			if tc.cert != nil {
				if err := os.WriteFile(cert, tc.cert, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.key != nil {
				if err := os.WriteFile(key, tc.key, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := kp.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "AAAA") {
				t.Fatalf("error quotes key material: %v", err)
			}
			if kp.Leaf().SerialNumber.Cmp(good.SerialNumber) != 0 {
				t.Fatal("a failed Reload changed the pair in use")
			}
			if _, err := pki.LoadKeyPair(cert, key); err == nil {
				t.Fatal("LoadKeyPair accepted what Reload refused")
			}
		})
	}
}

// TestKeyPairAcceptsNodeCertificate: any certificate/key pair in PEM can
// serve the public listener, including an ECDSA PKCS#8 one from the
// cluster tooling, chain and all.
func TestKeyPairAcceptsNodeCertificate(t *testing.T) {
	p := pkitest.New(t)
	p.Node(t, "n1")
	_, cert, key := p.Files("n1")
	kp, err := pki.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	serial, err := publicHandshake(t, kp.ServerConfig(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil || serial.Cmp(kp.Leaf().SerialNumber) != 0 {
		t.Fatalf("handshake: %v, %v", serial, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
