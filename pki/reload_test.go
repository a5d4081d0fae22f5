package pki_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestDialerFollowsReload: a ClientConfig made before a renewal (as the
// Raft transport, leader forwarding and join clients hold theirs) presents
// the renewed certificate afterwards.
func TestDialerFollowsReload(t *testing.T) {
	p := pkitest.New(t)
	n1, n2 := p.Node(t, "n1"), p.Node(t, "n2")
	dial := n1.ClientConfig("")
	serve := n2.NodeServerConfig()

	_, cert, _ := p.Files("n1")
	if err := pki.CreateNode(p.Dir, filepath.Dir(cert), "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err != nil {
		t.Fatal(err)
	}
	presented, err := dial.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if presented.Leaf.SerialNumber.Cmp(n1.Leaf().SerialNumber) != 0 {
		t.Fatal("dialer presents the certificate from before the reload")
	}
	wantOK(t, handshake(t, serve, dial))
}

// TestCABundleSwap: a node trusts certificates of a new CA once its CA
// file holds a bundle of the old and the new CA and is reloaded, and it
// keeps serving its own (old-CA) certificate meanwhile: the first step of
// a CA rotation.
func TestCABundleSwap(t *testing.T) {
	oldCA, newCA := pkitest.New(t), pkitest.New(t)
	n1 := oldCA.Node(t, "n1")
	n9 := newCA.Node(t, "n9")

	wantRefused(t, handshake(t, n1.ServerConfig(), n9.ClientConfig("")), "certificate")

	bundle := append(mustRead(t, filepath.Join(oldCA.Dir, pki.CAFile)), mustRead(t, filepath.Join(newCA.Dir, pki.CAFile))...)
	for _, e := range []struct {
		p  *pkitest.PKI
		id string
		m  *pki.Material
	}{{oldCA, "n1", n1}, {newCA, "n9", n9}} {
		ca, _, _ := e.p.Files(e.id)
		if err := os.WriteFile(ca, bundle, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Reload(); err != nil {
			t.Fatalf("reload %s with the CA bundle: %v", e.id, err)
		}
	}
	r := handshake(t, n1.ServerConfig(), n9.ClientConfig(""))
	wantOK(t, r)
	if r.serverPeer != (pki.Identity{Role: pki.RoleNode, Name: "n9"}) {
		t.Fatalf("server saw %v", r.serverPeer)
	}
	wantOK(t, handshake(t, n9.NodeServerConfig(), n1.ClientConfig("")))
}
