// Package pkitest gives tests in other packages a real cluster CA with
// real node and operator certificates on disk, so that they exercise the
// same TLS code paths as production instead of stubbing them.
package pkitest

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// PKI is a cluster CA in a test's temporary directory. Node certificates
// live in Dir/nodes/<id>/ and operator certificates in
// Dir/operators/<name>/, each directory with its own copy of ca.pem, the
// layout `nodalmerge cert create-*` produces. A PKI is safe for use by
// parallel subtests.
type PKI struct {
	// Dir holds ca.pem and ca-key.pem.
	Dir string
	// CA is the parsed CA certificate.
	CA *x509.Certificate

	mu     sync.Mutex
	issued map[string]entry // by node id or operator name
}

type entry struct {
	role pki.Role
	m    *pki.Material
}

// New makes a fresh CA in t.TempDir().
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir); err != nil {
		t.Fatalf("pkitest: create CA: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatalf("pkitest: read CA: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("pkitest: %s holds no PEM block", pki.CAFile)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("pkitest: parse CA: %v", err)
	}
	return &PKI{Dir: dir, CA: ca, issued: map[string]entry{}}
}

// Node issues (once per id) and loads a node certificate covering
// 127.0.0.1 and localhost (and ::1).
func (p *PKI) Node(t testing.TB, nodeID string) *pki.Material {
	t.Helper()
	return p.get(t, pki.RoleNode, nodeID)
}

// Operator issues (once per name) and loads an operator client certificate.
func (p *PKI) Operator(t testing.TB, name string) *pki.Material {
	t.Helper()
	return p.get(t, pki.RoleOperator, name)
}

// Files returns the CA, certificate and key paths of a node or operator
// issued earlier, for tests that start processes with --tls-* flags. It
// panics if the name was never issued: that is a bug in the test.
func (p *PKI) Files(nodeOrName string) (ca, cert, key string) {
	p.mu.Lock()
	e, ok := p.issued[nodeOrName]
	p.mu.Unlock()
	if !ok {
		panic("pkitest: Files(" + nodeOrName + "): no node or operator of that name was issued")
	}
	return p.files(e.role, nodeOrName)
}

func (p *PKI) files(role pki.Role, name string) (ca, cert, key string) {
	if role == pki.RoleNode {
		dir := filepath.Join(p.Dir, "nodes", name)
		return filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.NodeFile), filepath.Join(dir, pki.NodeKeyFile)
	}
	dir := filepath.Join(p.Dir, "operators", name)
	c, k := pki.ClientFiles(name)
	return filepath.Join(dir, pki.CAFile), filepath.Join(dir, c), filepath.Join(dir, k)
}

// get returns the cached material for name or issues it. A name may be a
// node or an operator, not both, so that Files is unambiguous.
func (p *PKI) get(t testing.TB, role pki.Role, name string) *pki.Material {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.issued[name]; ok {
		if e.role != role {
			t.Fatalf("pkitest: %q was already issued as %s, cannot issue it as %s", name, e.role, role)
		}
		return e.m
	}
	ca, cert, key := p.files(role, name)
	dir := filepath.Dir(cert)
	var err error
	if role == pki.RoleNode {
		err = pki.CreateNode(p.Dir, dir, name, []string{"127.0.0.1", "localhost"})
	} else {
		err = pki.CreateClient(p.Dir, dir, name)
	}
	if err != nil {
		t.Fatalf("pkitest: issue %s %q: %v", role, name, err)
	}
	m, err := pki.Load(ca, cert, key)
	if err != nil {
		t.Fatalf("pkitest: load %s %q: %v", role, name, err)
	}
	p.issued[name] = entry{role: role, m: m}
	return m
}
