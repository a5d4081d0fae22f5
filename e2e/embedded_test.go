package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// statusJSON is the part of GetStatus's JSON form the tests read.
type statusJSON struct {
	ClusterID    string `json:"clusterId"`
	NodeID       string `json:"nodeId"`
	LeaderID     string `json:"leaderId"`
	Term         string `json:"term"`
	AppliedIndex string `json:"appliedIndex"`
	State        string `json:"state"`
	Members      []struct {
		NodeID    string `json:"nodeId"`
		RaftAddr  string `json:"raftAddr"`
		AdminAddr string `json:"adminAddr"`
		Voter     bool   `json:"voter"`
		State     string `json:"state"`
	} `json:"members"`
}

func parseStatus(t *testing.T, r grpcurlResult) statusJSON {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("grpcurl failed (exit %d):\n%s", r.code, r.out)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatalf("GetStatus output is not JSON: %v\n%s", err, r.out)
	}
	if st.ClusterID == "" || st.NodeID == "" {
		t.Fatalf("GetStatus lacks cluster or node id:\n%s", r.out)
	}
	return st
}

// TestEmbeddedDefault is the README's first command, `nodalmerge serve` with
// no flags, followed by the grpcurl command its banner prints, pasted into a
// shell as printed.
func TestEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)

	st := parseStatus(t, runShell(t, dir, s.grpcurl))
	if st.LeaderID != st.NodeID || st.State != "leader" {
		t.Errorf("single node is not its own leader: leader %q node %q state %q", st.LeaderID, st.NodeID, st.State)
	}
	if len(st.Members) != 1 || st.Members[0].NodeID != st.NodeID || !st.Members[0].Voter {
		t.Errorf("members = %+v, want this node as the one voter", st.Members)
	}
	if st.Members[0].AdminAddr != "127.0.0.1:7879" {
		t.Errorf("member admin address = %q, want the default 127.0.0.1:7879", st.Members[0].AdminAddr)
	}
	if s.wsURL != "ws://127.0.0.1:7878/ws/" {
		t.Errorf("banner WebSocket URL = %q, want the default ws://127.0.0.1:7878/ws/{room}", s.wsURL)
	}

	// The state folder and its secrets are private, and the token file
	// holds one JWT and at most a trailing newline.
	state := s.stateDir()
	wantMode(t, state, 0o700)
	wantMode(t, filepath.Join(state, "bootstrap-operator.token"), 0o600)
	wantMode(t, filepath.Join(state, "tls", "ca-key.pem"), 0o600)
	wantMode(t, filepath.Join(state, "tls", "operator-key.pem"), 0o600)
	wantMode(t, filepath.Join(state, "tls", "node-key.pem"), 0o600)
	for _, f := range []string{"ca.pem", "node.pem", "operator.pem"} {
		if _, err := os.Stat(filepath.Join(state, "tls", f)); err != nil {
			t.Errorf("dev TLS material: %v", err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(state, "bootstrap-operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSuffix(string(raw), "\n")
	if strings.ContainsAny(tok, " \n\t") || strings.Count(tok, ".") != 2 {
		t.Fatalf("token file does not hold exactly one JWT: %d bytes", len(raw))
	}

	s.stop(t)
	for name, text := range map[string]string{"stdout": strings.Join(s.banner, "\n"), "stderr": s.stderr.String()} {
		if strings.Contains(text, tok) || strings.Contains(text, strings.Split(tok, ".")[2]) {
			t.Errorf("the bootstrap token appears on %s", name)
		}
	}
}

// TestAdminOverMutualTLS drives the admin port with grpcurl the way an
// operator does: reflection lists the services with only a certificate;
// calls need a token; a client without a certificate never gets in.
func TestAdminOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, loopbackPorts()...)
	tlsDir := filepath.Join(s.stateDir(), "tls")
	cert := s.operatorTLS()
	bootstrap := s.bootstrapToken(t)
	bearer := "authorization: Bearer " + bootstrap

	t.Run("reflection lists the services with only a certificate", func(t *testing.T) {
		r := grpcurl(t, append(cert, s.admin, "list")...)
		if r.code != 0 {
			t.Fatalf("grpcurl list failed:\n%s", r.out)
		}
		for _, svc := range []string{"nodalmerge.admin.v1.ClusterService", "grpc.health.v1.Health"} {
			if !strings.Contains(r.out, svc) {
				t.Errorf("list lacks %s:\n%s", svc, r.out)
			}
		}
	})
	t.Run("health answers with only a certificate", func(t *testing.T) {
		r := grpcurl(t, append(cert, s.admin, "grpc.health.v1.Health/Check")...)
		if r.code != 0 || !strings.Contains(r.out, "SERVING") {
			t.Fatalf("health check: exit %d\n%s", r.code, r.out)
		}
	})
	t.Run("GetStatus with the bootstrap token", func(t *testing.T) {
		st := parseStatus(t, grpcurl(t, append(cert, "-H", bearer, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")...))
		if st.LeaderID != st.NodeID {
			t.Errorf("leader %q, node %q", st.LeaderID, st.NodeID)
		}
	})
	t.Run("ListMembers with the bootstrap token", func(t *testing.T) {
		r := grpcurl(t, append(cert, "-H", bearer, s.admin, "nodalmerge.admin.v1.ClusterService/ListMembers")...)
		if r.code != 0 || !strings.Contains(r.out, `"voter": true`) {
			t.Fatalf("ListMembers: exit %d\n%s", r.code, r.out)
		}
	})
	t.Run("no token is UNAUTHENTICATED", func(t *testing.T) {
		r := grpcurl(t, append(cert, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")...)
		if r.code == 0 || !strings.Contains(r.out, "Code: Unauthenticated") || !strings.Contains(r.out, "Message: auth: missing bearer token") {
			t.Fatalf("want Unauthenticated / auth: missing bearer token, got exit %d:\n%s", r.code, r.out)
		}
	})
	t.Run("a forged token is UNAUTHENTICATED", func(t *testing.T) {
		parts := strings.Split(bootstrap, ".")
		forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
		r := grpcurl(t, append(cert, "-H", "authorization: Bearer "+forged, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")...)
		if r.code == 0 || !strings.Contains(r.out, "Code: Unauthenticated") || !strings.Contains(r.out, "signature verification failed") {
			t.Fatalf("want Unauthenticated / signature verification failed, got exit %d:\n%s", r.code, r.out)
		}
	})
	t.Run("no client certificate fails the TLS handshake", func(t *testing.T) {
		r := grpcurl(t, "-cacert", filepath.Join(tlsDir, "ca.pem"), "-H", bearer, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")
		if r.code == 0 {
			t.Fatalf("a client without a certificate got in:\n%s", r.out)
		}
		if strings.Contains(r.out, "Code: Unauthenticated") || strings.Contains(r.out, "clusterId") {
			t.Fatalf("a client without a certificate reached the RPC layer:\n%s", r.out)
		}
		if !strings.Contains(strings.ToLower(r.out), "certificate") && !strings.Contains(strings.ToLower(r.out), "tls") {
			t.Fatalf("failure does not look like a TLS failure:\n%s", r.out)
		}
	})
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}
