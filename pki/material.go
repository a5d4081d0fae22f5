package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// Material is one party's loaded TLS material: the CA pool it trusts, its
// own certificate and key, and the identity the certificate carries.
//
// The loaded state sits behind an atomic pointer and every tls.Config made
// from a Material reads it at handshake time, so Reload can swap in renewed
// files without restarting listeners or re-creating gRPC credentials.
// A Material is safe for concurrent use.
type Material struct {
	caFile, certFile, keyFile string
	cur                       atomic.Pointer[bundle]
}

// bundle is one immutable generation of loaded material.
type bundle struct {
	pool *x509.CertPool
	cert tls.Certificate // Leaf is set
	id   Identity
}

// Load reads the CA file (one or more PEM certificates), the certificate
// file (leaf first, then any intermediates) and the key file, and checks
// that the key matches, that the certificate chains to the CA and is valid
// now, and that it carries a nodalmerge identity. Errors name the file at
// fault so a misconfigured --tls-* flag is obvious at start.
func Load(caFile, certFile, keyFile string) (*Material, error) {
	b, err := loadBundle(caFile, certFile, keyFile, time.Now())
	if err != nil {
		return nil, err
	}
	m := &Material{caFile: caFile, certFile: certFile, keyFile: keyFile}
	m.cur.Store(b)
	return m, nil
}

// Reload re-reads the files Load was given and, if they pass the same
// checks and still name the same identity, makes them current for all new
// handshakes. On error the previous material stays in use: a bad renewal
// must not take a running node off the network.
func (m *Material) Reload() error {
	b, err := loadBundle(m.caFile, m.certFile, m.keyFile, time.Now())
	if err != nil {
		return err
	}
	if old := m.cur.Load(); old.id != b.id {
		return fmt.Errorf("pki: reload %s: certificate is for %s, was %s; refusing to change identity of a running process", m.certFile, b.id, old.id)
	}
	m.cur.Store(b)
	return nil
}

// Identity is the identity carried by our own certificate.
func (m *Material) Identity() Identity { return m.cur.Load().id }

// Certificate is our current certificate chain and key.
func (m *Material) Certificate() tls.Certificate { return m.cur.Load().cert }

// CAPool is the current set of trusted CA certificates.
func (m *Material) CAPool() *x509.CertPool { return m.cur.Load().pool }

// Leaf is our current parsed certificate (for expiry checks and banners).
func (m *Material) Leaf() *x509.Certificate { return m.cur.Load().cert.Leaf }

func loadBundle(caFile, certFile, keyFile string, now time.Time) (*bundle, error) {
	cas, err := readCerts(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	cert, chain, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("pki: certificate %s is not valid under CA %s: %w", certFile, caFile, err)
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate %s: %w", certFile, err)
	}
	return &bundle{pool: pool, cert: *cert, id: id}, nil
}
