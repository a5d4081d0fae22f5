package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreRestartKeepsClusterAndKeyring restarts a durable node with the
// same --store: it must resume the same cluster, node id and keyring (the
// bootstrap token minted by the first run still verifies) without minting a
// second bootstrap token.
func TestStoreRestartKeepsClusterAndKeyring(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	args := append([]string{"--store", store}, loopbackPorts()...)

	first := startServer(t, dir, args...)
	before := parseStatus(t, runShell(t, dir, first.grpcurl))
	tokenPath := filepath.Join(store, "bootstrap-operator.token")
	tok1, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	wantMode(t, store, 0o700)
	first.stop(t)

	second := startServer(t, dir, args...)
	after := parseStatus(t, runShell(t, dir, second.grpcurl))
	if after.ClusterID != before.ClusterID {
		t.Errorf("cluster id changed across restart: %q -> %q", before.ClusterID, after.ClusterID)
	}
	if after.NodeID != before.NodeID {
		t.Errorf("node id changed across restart: %q -> %q", before.NodeID, after.NodeID)
	}
	if after.LeaderID != after.NodeID {
		t.Errorf("restarted lone node is not leader: %+v", after)
	}
	tok2, err := os.ReadFile(tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tok1, tok2) {
		t.Errorf("restart minted a new bootstrap token; it is minted once, at cluster bootstrap")
	}
	if !strings.Contains(strings.Join(second.banner, "\n"), "valid until") {
		t.Errorf("banner does not say the kept token is still valid:\n%s", strings.Join(second.banner, "\n"))
	}
	// A second --bootstrap on a store that already holds a cluster is
	// ignored with a warning, never a second cluster.
	second.stop(t)
	third := startServer(t, dir, append(args, "--bootstrap")...)
	again := parseStatus(t, runShell(t, dir, third.grpcurl))
	if again.ClusterID != before.ClusterID {
		t.Errorf("--bootstrap on an existing store made a new cluster: %q -> %q", before.ClusterID, again.ClusterID)
	}
	third.stop(t)
	if !strings.Contains(third.stderr.String(), "--bootstrap ignored") {
		t.Errorf("no warning for --bootstrap on an existing store; stderr:\n%s", third.stderr.String())
	}
}

// TestBadFlagsFailClearly: a bad flag stops the start with a message naming
// the flag, and nothing is left running.
func TestBadFlagsFailClearly(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "nonsense"}, "--listen"},
		{[]string{"--tls-ca", "/nonexistent/ca.pem"}, "--tls-ca"},
		{[]string{"--node-id", "bad id!"}, "--node-id"},
		{[]string{"--log-level", "loud"}, "--log-level"},
	} {
		r := runShell(t, t.TempDir(), shellJoin(append([]string{bins.nodalmerge, "serve"}, tc.args...)))
		if r.code == 0 || !strings.Contains(r.out, tc.want) {
			t.Errorf("serve %v: exit %d, want a failure naming %s:\n%s", tc.args, r.code, tc.want, r.out)
		}
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
