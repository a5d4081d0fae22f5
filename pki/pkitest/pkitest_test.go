package pkitest_test

import (
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func TestFilesLoadTheSameIdentity(t *testing.T) {
	p := pkitest.New(t)
	for _, tc := range []struct {
		name string
		m    *pki.Material
		want pki.Identity
	}{
		{"n1", p.Node(t, "n1"), pki.Identity{Role: pki.RoleNode, Name: "n1"}},
		{"alice", p.Operator(t, "alice"), pki.Identity{Role: pki.RoleOperator, Name: "alice"}},
	} {
		if tc.m.Identity() != tc.want {
			t.Fatalf("%s: identity %v", tc.name, tc.m.Identity())
		}
		ca, cert, key := p.Files(tc.name)
		m, err := pki.Load(ca, cert, key)
		if err != nil {
			t.Fatalf("%s: load files: %v", tc.name, err)
		}
		if !m.Leaf().Equal(tc.m.Leaf()) {
			t.Fatalf("%s: Files() point at another certificate", tc.name)
		}
	}
	if p.Node(t, "n1") != p.Node(t, "n1") {
		t.Fatal("Node is not cached per id")
	}
	if !p.CA.IsCA {
		t.Fatal("CA field is not the CA")
	}
}

func TestFilesUnknownPanics(t *testing.T) {
	p := pkitest.New(t)
	defer func() {
		if recover() == nil {
			t.Fatal("Files of an unknown name did not panic")
		}
	}()
	p.Files("nobody")
}
