package pki

import (
	"crypto/x509"
	"net/url"
	"testing"
)

func certWithURIs(t testing.TB, uris ...string) *x509.Certificate {
	t.Helper()
	c := &x509.Certificate{}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		c.URIs = append(c.URIs, u)
	}
	return c
}

func TestIdentityFromCert(t *testing.T) {
	for _, tc := range []struct {
		uris []string
		want Identity
		ok   bool
	}{
		{[]string{"nodalmerge://node/n1"}, Identity{RoleNode, "n1"}, true},
		{[]string{"nodalmerge://operator/alice"}, Identity{RoleOperator, "alice"}, true},
		{[]string{"spiffe://example.org/x", "nodalmerge://node/n-2.a_b"}, Identity{RoleNode, "n-2.a_b"}, true},
		{nil, Identity{}, false},
		{[]string{"spiffe://example.org/x"}, Identity{}, false},
		{[]string{"nodalmerge://node/n1", "nodalmerge://operator/a"}, Identity{}, false},
		{[]string{"nodalmerge://node/n1", "nodalmerge://node/n1"}, Identity{}, false},
		{[]string{"nodalmerge://admin/root"}, Identity{}, false},
		{[]string{"nodalmerge://node/"}, Identity{}, false},
		{[]string{"nodalmerge://node"}, Identity{}, false},
		{[]string{"nodalmerge://node/a/b"}, Identity{}, false},
		{[]string{"nodalmerge://node/n1?x=1"}, Identity{}, false},
		{[]string{"nodalmerge://node/n1#f"}, Identity{}, false},
		{[]string{"nodalmerge://u@node/n1"}, Identity{}, false},
		{[]string{"nodalmerge://node/%2e%2e"}, Identity{}, false},
		{[]string{"nodalmerge:node/n1"}, Identity{}, false},
	} {
		got, err := IdentityFromCert(certWithURIs(t, tc.uris...))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("IdentityFromCert(%q) = %v, %v; want %v, ok=%v", tc.uris, got, err, tc.want, tc.ok)
		}
	}
	if _, err := IdentityFromCert(nil); err == nil {
		t.Error("nil certificate accepted")
	}
}

func TestIdentityString(t *testing.T) {
	if s := (Identity{RoleNode, "n1"}).String(); s != "node:n1" {
		t.Fatal(s)
	}
	if s := (Identity{RoleOperator, "bob"}).String(); s != "operator:bob" {
		t.Fatal(s)
	}
}

// FuzzIdentityFromURI feeds arbitrary URI SANs (what a peer controls in a
// certificate it gets signed) to IdentityFromCert: it must never panic, and
// an accepted identity must round-trip through the URI we would issue.
func FuzzIdentityFromURI(f *testing.F) {
	for _, s := range []string{"nodalmerge://node/n1", "nodalmerge://operator/alice", "nodalmerge://node/../x", "nodalmerge://node/a%2Fb", "nodalmerge://[::1]/x", "nodalmerge:opaque"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		id, err := IdentityFromCert(&x509.Certificate{URIs: []*url.URL{u}})
		if err != nil {
			return
		}
		again, err := IdentityFromCert(&x509.Certificate{URIs: []*url.URL{id.uri()}})
		if err != nil || again != id {
			t.Fatalf("identity %v from %q does not round-trip: %v %v", id, s, again, err)
		}
		if validateName(id.Name) != nil {
			t.Fatalf("accepted invalid name %q", id.Name)
		}
	})
}

func TestNormalizeHosts(t *testing.T) {
	hs, err := normalizeHosts([]string{"Example.COM.", "example.com", "[::1]:80", "::ffff:127.0.0.1", ":7878", "[::]:1", " 10.0.0.1 "})
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.dns) != 2 || hs.dns[0] != "localhost" || hs.dns[1] != "example.com" {
		t.Errorf("dns %v", hs.dns)
	}
	var ips []string
	for _, ip := range hs.ips {
		ips = append(ips, ip.String())
	}
	if len(ips) != 3 || ips[0] != "127.0.0.1" || ips[1] != "::1" || ips[2] != "10.0.0.1" {
		t.Errorf("ips %v", ips)
	}
}
