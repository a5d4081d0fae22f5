package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLeastPrivilegeOperatorTokens mints narrower operator tokens from the
// bootstrap token against the real binary, once through grpcurl and once
// through `nodalmerge token operator`, and checks that each new token holds
// exactly what it was given.
func TestLeastPrivilegeOperatorTokens(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, loopbackPorts()...)
	cert := s.operatorTLS()
	bootstrap := s.bootstrapToken(t)
	getStatus := func(t *testing.T, jwt string) grpcurlResult {
		t.Helper()
		return grpcurl(t, append(cert, "-H", "authorization: Bearer "+jwt, s.admin, "nodalmerge.admin.v1.ClusterService/GetStatus")...)
	}

	t.Run("grpcurl mints a room.admin token that cannot read the cluster", func(t *testing.T) {
		r := grpcurl(t, append(cert, "-H", "authorization: Bearer "+bootstrap,
			"-d", `{"subject":"room-bot","caps":["room.admin"],"ttl":"600s"}`,
			s.admin, "nodalmerge.admin.v1.TokenService/MintOperatorToken")...)
		if r.code != 0 {
			t.Fatalf("MintOperatorToken: exit %d\n%s", r.code, r.out)
		}
		var resp struct {
			Token     string    `json:"token"`
			TokenID   string    `json:"tokenId"`
			ExpiresAt time.Time `json:"expiresAt"`
		}
		if err := json.Unmarshal([]byte(r.out), &resp); err != nil {
			t.Fatalf("response is not JSON: %v\n%s", err, r.out)
		}
		if resp.Token == "" || len(resp.TokenID) != 32 {
			t.Fatalf("response lacks token or token id:\n%s", r.out)
		}
		if left := time.Until(resp.ExpiresAt); left <= 9*time.Minute || left > 10*time.Minute+time.Second {
			t.Errorf("expiresAt %v is not about 600s ahead", resp.ExpiresAt)
		}
		st := getStatus(t, resp.Token)
		if st.code == 0 || !strings.Contains(st.out, "Code: PermissionDenied") ||
			!strings.Contains(st.out, "Message: reject.control_plane_forbidden: command=cluster.status requires=cluster.read") {
			t.Fatalf("GetStatus with a room.admin token: want the cluster.read deny, got exit %d:\n%s", st.code, st.out)
		}
	})

	t.Run("the CLI mints a cluster.read token that reads the cluster", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bins.nodalmerge, "token", "operator",
			"--admin", s.admin, "--subject", "dashboard", "--caps", "cluster.read", "--ttl", "10m")
		cmd.Dir = dir // --state-dir defaults to ./.nodalmerge
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("nodalmerge token operator: %v\nstderr:\n%s", err, stderr.String())
		}
		jwt := strings.TrimSuffix(stdout.String(), "\n")
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).MatchString(jwt) {
			t.Fatalf("stdout is not exactly one JWT and a newline: %q", stdout.String())
		}
		if !regexp.MustCompile(`operator token [0-9a-f]{32} for dashboard, expires `).MatchString(stderr.String()) {
			t.Errorf("stderr lacks the token id and expiry: %q", stderr.String())
		}
		if strings.Contains(stderr.String(), jwt) {
			t.Error("stderr repeats the token")
		}
		parseStatus(t, getStatus(t, jwt))
	})

	t.Run("the CLI reports escalation with the server's message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bins.nodalmerge, "token", "operator",
			"--admin", s.admin, "--subject", "node", "--caps", "cluster.node")
		cmd.Dir = dir
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err == nil {
			t.Fatal("minting a cluster.node token succeeded")
		}
		if stdout.Len() != 0 {
			t.Errorf("stdout is not empty on failure: %q", stdout.String())
		}
		want := "InvalidArgument: token.mint-operator: cannot grant cluster.node: it is held only by node certificates, never by tokens"
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr = %q, want it to contain %q", stderr.String(), want)
		}
	})
}
