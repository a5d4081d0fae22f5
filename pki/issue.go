package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

// Lifetimes. The CA outlives many leaf renewals; leaves are short enough
// that a leaked operator certificate stops working within a year.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	// backdate tolerates clock skew between the issuing host and peers.
	backdate = 5 * time.Minute
)

// authority is a loaded CA: its certificate, PEM bytes and signing key.
type authority struct {
	cert *x509.Certificate
	pem  []byte
	key  crypto.Signer
}

// issued is a freshly made certificate with its key, both PEM-encoded.
type issued struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// newSerial picks a random positive 127-bit serial number. Random serials
// keep two certificates issued in the same second distinct and are what
// RFC 5280 readers expect from a CA without a serial database.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// newCA makes a self-signed P-256 CA valid from now for caLifetime. The CA
// may only sign leaves (MaxPathLen 0): there are no intermediates.
func newCA(now time.Time) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "NodalMerge cluster CA", Organization: []string{"NodalMerge"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, key, key)
}

// newLeaf issues a certificate for id from ca. Node certificates serve and
// dial (ServerAuth+ClientAuth) and cover hosts; operator certificates only
// dial (ClientAuth), so an operator can never impersonate a node server.
// The leaf never outlives its CA.
func newLeaf(ca *authority, id Identity, hosts hostSet, now time.Time) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %s: %w", id, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafLifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.Name, Organization: []string{"NodalMerge"}, OrganizationalUnit: []string{string(id.Role)}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{id.uri()},
	}
	switch id.Role {
	case RoleNode:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = hosts.dns
		tmpl.IPAddresses = hosts.ips
	case RoleOperator:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, fmt.Errorf("pki: cannot issue for role %q", id.Role)
	}
	return sign(tmpl, ca.cert, key, ca.key)
}

// sign creates the certificate and PEM-encodes it with its private key.
func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (*issued, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &issued{cert: cert, certPEM: encodeCert(der), keyPEM: keyPEM}, nil
}
