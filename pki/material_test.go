package pki_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func TestLoadErrorsNameTheFile(t *testing.T) {
	p, foreign := pkitest.New(t), pkitest.New(t)
	p.Node(t, "n1")
	p.Node(t, "n2")
	foreign.Node(t, "n1")
	ca, cert, key := p.Files("n1")
	_, _, key2 := p.Files("n2")
	fca, _, _ := foreign.Files("n1")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ca, cert, key, want string
	}{
		{"missing CA", missing, cert, key, missing},
		{"missing cert", ca, missing, key, missing},
		{"missing key", ca, cert, missing, missing},
		{"garbage CA", garbage, cert, key, garbage},
		{"garbage key", ca, cert, garbage, garbage},
		{"key in cert slot", ca, key, key, key},
		{"mismatched key", ca, cert, key2, "does not match"},
		{"foreign CA", fca, cert, key, "not valid under CA " + fca},
		{"CA without identity", ca, ca, filepath.Join(p.Dir, "ca-key.pem"), "no nodalmerge:// identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pki.Load(tc.ca, tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Fatalf("error quotes key material: %v", err)
			}
		})
	}
}

func TestMaterialAccessors(t *testing.T) {
	p := pkitest.New(t)
	m := p.Operator(t, "alice")
	if m.Identity() != (pki.Identity{Role: pki.RoleOperator, Name: "alice"}) {
		t.Fatalf("identity %v", m.Identity())
	}
	c := m.Certificate()
	if c.Leaf == nil || c.PrivateKey == nil || len(c.Certificate) != 1 {
		t.Fatalf("certificate incomplete: %+v", c)
	}
	if !m.Leaf().Equal(c.Leaf) {
		t.Fatal("Leaf() differs from Certificate().Leaf")
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: m.CAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify under CAPool(): %v", err)
	}
	if p.Operator(t, "alice") != m {
		t.Fatal("pkitest did not cache the operator material")
	}
}

// TestReload shows a config made before a renewal serves the renewed
// certificate afterwards, without being re-created.
func TestReload(t *testing.T) {
	p := pkitest.New(t)
	n1, n2 := p.Node(t, "n1"), p.Node(t, "n2")
	serverCfg := n1.ServerConfig()
	before := n1.Leaf().SerialNumber

	r := handshake(t, serverCfg, n2.ClientConfig(""))
	wantOK(t, r)
	if got := r.clientConn.PeerCertificates[0].SerialNumber; got.Cmp(before) != 0 {
		t.Fatalf("served serial %v, want %v", got, before)
	}

	_, cert, _ := p.Files("n1")
	if err := pki.CreateNode(p.Dir, filepath.Dir(cert), "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err != nil {
		t.Fatal(err)
	}
	after := n1.Leaf().SerialNumber
	if after.Cmp(before) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	r = handshake(t, serverCfg, n2.ClientConfig(""))
	wantOK(t, r)
	if got := r.clientConn.PeerCertificates[0].SerialNumber; got.Cmp(after) != 0 {
		t.Fatalf("after reload served serial %v, want %v", got, after)
	}
}

func TestReloadKeepsOldOnFailure(t *testing.T) {
	p := pkitest.New(t)
	n1 := p.Node(t, "n1")
	before := n1.Leaf().SerialNumber
	_, cert, _ := p.Files("n1")

	// A broken file is rejected and the running material stays.
	good, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err == nil {
		t.Fatal("Reload accepted a broken certificate file")
	}
	if n1.Leaf().SerialNumber.Cmp(before) != 0 {
		t.Fatal("failed Reload changed the material")
	}
	if err := os.WriteFile(cert, good, 0o644); err != nil {
		t.Fatal(err)
	}

	// A valid certificate for another identity is refused too.
	if err := pki.CreateNode(p.Dir, filepath.Dir(cert), "n9", nil); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err == nil || !strings.Contains(err.Error(), "node:n9") {
		t.Fatalf("Reload with a different identity = %v", err)
	}
	if n1.Identity().Name != "n1" {
		t.Fatalf("identity changed to %v", n1.Identity())
	}
}
