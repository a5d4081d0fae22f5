package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// renewBefore is how close to expiry a generated certificate is re-issued
// by EnsureDev: a month of margin means a node restarted at any time in its
// last month does not run into expiry mid-operation.
const renewBefore = 30 * 24 * time.Hour

// EnsureDev makes the embedded-default TLS material in tlsDir when it is
// missing: ca.pem, ca-key.pem, node.pem, node-key.pem, operator.pem and
// operator-key.pem (keys 0600, tlsDir 0700). Existing files are reused so
// that restarts keep the CA operators already trust. If the existing node
// certificate is not for nodeID, does not cover every host in hosts (plus
// localhost, 127.0.0.1, ::1), expires within 30 days, or no longer
// verifies under the CA, only the node certificate is re-issued from the
// existing CA; the operator certificate is likewise re-issued only when it
// is unusable or near expiry. A CA that exists only in part is an error:
// guessing would orphan certificates.
func EnsureDev(tlsDir, nodeID string, hosts []string) error {
	return ensureDev(tlsDir, nodeID, hosts, time.Now())
}

func ensureDev(tlsDir, nodeID string, hosts []string, now time.Time) error {
	if err := validateName(nodeID); err != nil {
		return fmt.Errorf("pki: node id: %w", err)
	}
	hs, err := normalizeHosts(hosts)
	if err != nil {
		return fmt.Errorf("pki: node %s: %w", nodeID, err)
	}
	if err := ensureDir(tlsDir); err != nil {
		return err
	}
	ca, err := ensureDevCA(tlsDir, now)
	if err != nil {
		return err
	}
	nodeID0 := Identity{Role: RoleNode, Name: nodeID}
	if err := ensureLeaf(ca, tlsDir, NodeFile, NodeKeyFile, nodeID0, hs, now); err != nil {
		return err
	}
	opCert, opKey := ClientFiles(DevOperatorName)
	opID := Identity{Role: RoleOperator, Name: DevOperatorName}
	return ensureLeaf(ca, tlsDir, opCert, opKey, opID, hostSet{}, now)
}

// ensureDevCA loads the CA in dir or, if neither file exists, makes one.
func ensureDevCA(dir string, now time.Time) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	haveCert, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	haveKey, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case haveCert && haveKey:
		return loadAuthority(dir)
	case haveCert || haveKey:
		return nil, fmt.Errorf("pki: incomplete CA in %s: need both %s and %s (restore the missing file or remove both)", dir, CAFile, CAKeyFile)
	}
	is, err := newCA(now)
	if err != nil {
		return nil, err
	}
	if err := writePair(certPath, keyPath, is); err != nil {
		return nil, err
	}
	return loadAuthority(dir)
}

// ensureLeaf keeps the certificate at certName/keyName if it is still fit
// for id and hosts, and issues a new one otherwise.
func ensureLeaf(ca *authority, dir, certName, keyName string, id Identity, hs hostSet, now time.Time) error {
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if leafProblem(ca, certPath, keyPath, id, hs, now) == nil {
		return nil
	}
	leaf, err := newLeaf(ca, id, hs, now)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, leaf)
}

// leafProblem returns why the existing pair cannot be reused, or nil if it
// can. Any load failure (missing, corrupt, mismatched key) means "re-issue":
// these are generated files that nothing else owns.
func leafProblem(ca *authority, certPath, keyPath string, id Identity, hs hostSet, now time.Time) error {
	certs, err := readCerts(certPath)
	if err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return err
	}
	leaf := certs[0]
	if !keyMatches(leaf, key) {
		return fmt.Errorf("key %s does not match certificate %s", keyPath, certPath)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate %s does not verify under the CA: %w", certPath, err)
	}
	if got, err := IdentityFromCert(leaf); err != nil || got != id {
		return fmt.Errorf("certificate %s is not for %s", certPath, id)
	}
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return fmt.Errorf("certificate %s expires within %s", certPath, renewBefore)
	}
	if host, ok := uncovered(leaf, hs); !ok {
		return fmt.Errorf("certificate %s does not cover host %s", certPath, host)
	}
	return nil
}

// uncovered reports the first host of hs the certificate does not name.
func uncovered(c *x509.Certificate, hs hostSet) (string, bool) {
	for _, d := range hs.dns {
		if c.VerifyHostname(d) != nil {
			return d, false
		}
	}
	for _, ip := range hs.ips {
		if !hasIP(c, ip) {
			return ip.String(), false
		}
	}
	return "", true
}

func hasIP(c *x509.Certificate, ip net.IP) bool {
	for _, have := range c.IPAddresses {
		if have.Equal(ip) {
			return true
		}
	}
	return false
}
