package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var devFiles = []string{"ca.pem", "ca-key.pem", "node.pem", "node-key.pem", "operator.pem", "operator-key.pem"}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range devFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = b
	}
	return out
}

// changed lists the dev files whose bytes differ between two snapshots.
func changed(a, b map[string][]byte) []string {
	var out []string
	for _, f := range devFiles {
		if !bytes.Equal(a[f], b[f]) {
			out = append(out, f)
		}
	}
	return out
}

func TestEnsureDevFreshAndModes(t *testing.T) {
	state := t.TempDir()
	tlsDir := filepath.Join(state, "tls")
	// A pre-existing, too-open directory is tightened.
	if err := os.MkdirAll(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDev(tlsDir, "n1", []string{"127.0.0.1:7878", "devbox.local"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("tls dir mode %o, want 700", fi.Mode().Perm())
	}
	for _, f := range []string{"ca-key.pem", "node-key.pem", "operator-key.pem"} {
		fi, err := os.Stat(filepath.Join(tlsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 600", f, fi.Mode().Perm())
		}
	}
	node, err := Load(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "node.pem"), filepath.Join(tlsDir, "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if node.Identity() != (Identity{RoleNode, "n1"}) {
		t.Fatalf("node identity %v", node.Identity())
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "devbox.local"} {
		if err := node.Leaf().VerifyHostname(h); err != nil {
			t.Errorf("dev node cert does not cover %s", h)
		}
	}
	op, err := Load(filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "operator.pem"), filepath.Join(tlsDir, "operator-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if op.Identity() != (Identity{RoleOperator, "operator"}) {
		t.Fatalf("operator identity %v", op.Identity())
	}
	entries, err := os.ReadDir(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(devFiles) {
		t.Fatalf("tls dir holds %d entries, want exactly the %d dev files (no temp files left)", len(entries), len(devFiles))
	}
}

func TestEnsureDevIdempotent(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"10.1.2.3", "devbox"}
	if err := EnsureDev(dir, "n1", hosts); err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, dir)
	// Same hosts, in another order and form, change nothing.
	if err := EnsureDev(dir, "n1", []string{"devbox", "10.1.2.3:7880", "localhost"}); err != nil {
		t.Fatal(err)
	}
	if c := changed(first, snapshot(t, dir)); len(c) != 0 {
		t.Fatalf("second EnsureDev rewrote %v", c)
	}
}

func TestEnsureDevReissuesNodeOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodeID string
		hosts  []string
	}{
		{"new host", "n1", []string{"10.9.9.9"}},
		{"new DNS name", "n1", []string{"other.example"}},
		{"other node id", "n2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := EnsureDev(dir, "n1", nil); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			if err := EnsureDev(dir, tc.nodeID, tc.hosts); err != nil {
				t.Fatal(err)
			}
			c := changed(before, snapshot(t, dir))
			if strings.Join(c, ",") != "node.pem,node-key.pem" {
				t.Fatalf("changed files %v, want only the node pair", c)
			}
			m, err := Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if m.Identity().Name != tc.nodeID {
				t.Fatalf("identity %v", m.Identity())
			}
			for _, h := range tc.hosts {
				if err := m.Leaf().VerifyHostname(h); err != nil {
					t.Errorf("re-issued cert does not cover %s", h)
				}
			}
		})
	}
}

func TestEnsureDevRenewsNearExpiry(t *testing.T) {
	dir := t.TempDir()
	// Issued 340 days ago: the 1-year leaves expire in 25 days.
	if err := ensureDev(dir, "n1", nil, time.Now().Add(-340*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if err := EnsureDev(dir, "n1", nil); err != nil {
		t.Fatal(err)
	}
	c := changed(before, snapshot(t, dir))
	if strings.Join(c, ",") != "node.pem,node-key.pem,operator.pem,operator-key.pem" {
		t.Fatalf("changed %v, want the node and operator pairs renewed and the CA kept", c)
	}
	m, err := Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(m.Leaf().NotAfter) < 300*24*time.Hour {
		t.Fatalf("renewed cert expires at %v", m.Leaf().NotAfter)
	}
}

func TestEnsureDevRepairsBrokenLeaf(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureDev(dir, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-key.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDev(dir, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")); err != nil {
		t.Fatalf("node material not repaired: %v", err)
	}
}

func TestEnsureDevPartialCA(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureDev(dir, "n1", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	err := EnsureDev(dir, "n1", nil)
	if err == nil || !strings.Contains(err.Error(), "incomplete CA") {
		t.Fatalf("EnsureDev with half a CA = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(before, after) {
		t.Fatal("ca.pem replaced")
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	// A CA issued 9.9 years ago has a month left; a new leaf stops with it.
	now := time.Now()
	is, err := newCA(now.Add(-caLifetime + 30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "ca-key.pem")
	if err := os.WriteFile(keyPath, is.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := readKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := &authority{cert: is.cert, pem: is.certPEM, key: key}
	leaf, err := newLeaf(ca, Identity{RoleNode, "n1"}, hostSet{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.cert.NotAfter.After(ca.cert.NotAfter) {
		t.Fatalf("leaf NotAfter %v after CA NotAfter %v", leaf.cert.NotAfter, ca.cert.NotAfter)
	}
}
