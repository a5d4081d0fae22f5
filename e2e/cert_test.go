package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCertToolingDeployment is the real-deployment path: `nodalmerge cert`
// makes a CA, a node certificate and an operator certificate; a durable node
// serves with them; the operator reaches the admin API with its own
// certificate and the bootstrap token, and a certificate from another CA
// does not get in.
func TestCertToolingDeployment(t *testing.T) {
	dir := t.TempDir()
	ca, n1, ops := filepath.Join(dir, "ca"), filepath.Join(dir, "n1"), filepath.Join(dir, "ops")
	cli := func(args ...string) grpcurlResult {
		t.Helper()
		return runShell(t, dir, shellJoin(append([]string{bins.nodalmerge}, args...)))
	}
	for _, args := range [][]string{
		{"cert", "create-ca", "--dir", ca},
		{"cert", "create-node", "--ca-dir", ca, "--dir", n1, "--node-id", "n1", "--hosts", "127.0.0.1,n1.internal"},
		{"cert", "create-client", "--ca-dir", ca, "--dir", ops, "--name", "alice"},
	} {
		if r := cli(args...); r.code != 0 {
			t.Fatalf("nodalmerge %v: exit %d\n%s", args, r.code, r.out)
		}
	}
	for _, d := range []string{ca, n1, ops} {
		wantMode(t, d, 0o700)
	}
	for _, f := range []string{filepath.Join(ca, "ca-key.pem"), filepath.Join(n1, "node-key.pem"), filepath.Join(ops, "alice-key.pem")} {
		wantMode(t, f, 0o600)
	}
	if r := cli("cert", "create-ca", "--dir", ca); r.code == 0 {
		t.Errorf("create-ca over an existing CA succeeded; it must refuse:\n%s", r.out)
	}
	if r := cli("cert", "create-node", "--ca-dir", ca, "--dir", filepath.Join(dir, "x")); r.code == 0 || !strings.Contains(r.out, "node-id") {
		t.Errorf("create-node without --node-id: exit %d, want an error naming the flag:\n%s", r.code, r.out)
	}

	store := filepath.Join(dir, "store")
	s := startServer(t, dir, append([]string{"--store", store, "--node-id", "n1",
		"--tls-ca", filepath.Join(n1, "ca.pem"), "--tls-cert", filepath.Join(n1, "node.pem"), "--tls-key", filepath.Join(n1, "node-key.pem")},
		loopbackPorts()...)...)
	tok := strings.TrimSpace(readFile(t, filepath.Join(store, "bootstrap-operator.token")))
	alice := []string{"-cacert", filepath.Join(ops, "ca.pem"), "-cert", filepath.Join(ops, "alice.pem"), "-key", filepath.Join(ops, "alice-key.pem")}
	st := parseStatus(t, grpcurl(t, append(alice, "-H", "authorization: Bearer "+tok, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")...))
	if st.NodeID != "n1" || st.LeaderID != "n1" {
		t.Errorf("status = %+v, want node n1 leading", st)
	}

	// An operator certificate from a different CA never completes the
	// handshake, token or not.
	other := filepath.Join(dir, "other")
	if r := cli("cert", "create-ca", "--dir", other); r.code != 0 {
		t.Fatalf("second CA: %s", r.out)
	}
	if r := cli("cert", "create-client", "--ca-dir", other, "--dir", filepath.Join(dir, "mallory"), "--name", "mallory"); r.code != 0 {
		t.Fatalf("foreign client: %s", r.out)
	}
	m := filepath.Join(dir, "mallory")
	r := grpcurl(t, "-cacert", filepath.Join(ops, "ca.pem"), "-cert", filepath.Join(m, "mallory.pem"), "-key", filepath.Join(m, "mallory-key.pem"),
		"-H", "authorization: Bearer "+tok, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")
	if r.code == 0 || strings.Contains(r.out, "clusterId") || strings.Contains(r.out, "Code: Unauthenticated") {
		t.Fatalf("a certificate from another CA reached the RPC layer:\n%s", r.out)
	}
	s.stop(t)
}
