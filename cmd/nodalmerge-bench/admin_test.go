package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// stateDir makes a folder laid out like the one `nodalmerge serve` writes:
// tls/ca.pem, tls/operator.pem, tls/operator-key.pem and, unless token is
// empty, bootstrap-operator.token.
func stateDir(t *testing.T, token string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	tlsDir := filepath.Join(dir, "tls")
	if err := pki.CreateCA(tlsDir); err != nil {
		t.Fatal(err)
	}
	if err := pki.CreateClient(tlsDir, tlsDir, pki.DevOperatorName); err != nil {
		t.Fatal(err)
	}
	if token != "" {
		if err := os.WriteFile(filepath.Join(dir, "bootstrap-operator.token"), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAdminHelp(t *testing.T) {
	for cmd, want := range map[string][]string{
		"admin-writes": {"--clients", "--clients-per-conn", "--duration", "--warmup", "--admin", "--tls-ca", "--tls-cert", "--tls-key",
			"--token", "--token-file", "NODALMERGE_TOKEN", "--state-dir", "--room-writes", "--server-pid", "--json", "Examples:", "SetPolicy", "forwarded"},
		"admin-reads": {"--clients", "--read", "--stale", "nodalmerge-consistency: stale", "GetPolicy", "GetStatus", "Examples:"},
	} {
		out, _, err := run(t, cmd, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}

func TestAdminBadFlagsNameTheFlag(t *testing.T) {
	state := stateDir(t, "tok")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"admin-writes", "--clients", "0"}, "invalid --clients: must be at least 1"},
		{[]string{"admin-writes", "--clients-per-conn", "0"}, "invalid --clients-per-conn"},
		{[]string{"admin-writes", "--room-writes", "0"}, "invalid --room-writes"},
		{[]string{"admin-writes", "--duration", "0s"}, "invalid --duration: must be positive"},
		{[]string{"admin-writes", "--timeout", "0s"}, "invalid --timeout"},
		{[]string{"admin-writes", "--admin", "nohost"}, "invalid --admin: must be host:port"},
		{[]string{"admin-writes", "--room-prefix", "a/b"}, "invalid --room-prefix"},
		{[]string{"admin-writes", "--stale"}, "unknown flag: --stale"},
		{[]string{"admin-reads", "--read", "keys"}, "invalid --read"},
		{[]string{"admin-reads", "--read", "status", "--stale"}, "invalid --stale: only applies to policy reads"},
		{[]string{"admin-reads", "--room-writes", "3"}, "unknown flag: --room-writes"},
		{[]string{"admin-reads", "extra"}, "takes no arguments"},
		{[]string{"admin-reads", "--tls-ca", "/nonexistent/ca.pem"}, "--tls-ca/--tls-cert/--tls-key"},
		{[]string{"admin-reads", "--token-file", "/nonexistent/token"}, "--token-file: read the operator token"},
	} {
		_, _, err := run(t, append(c.args, "--state-dir", state)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
}

// TestAdminUnreachable runs the command for real against a port nothing
// listens on: the first call fails and the command says where and why.
func TestAdminUnreachable(t *testing.T) {
	state := stateDir(t, "tok")
	_, _, err := run(t, "admin-writes", "-q", "--state-dir", state, "--admin", "127.0.0.1:1", "--duration", "200ms")
	if err == nil || !strings.Contains(err.Error(), "first set-policy call to 127.0.0.1:1 failed: UNAVAILABLE") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "tok") {
		t.Errorf("error names the token: %v", err)
	}
}

// TestAdminTokenPrecedence: --token, then an explicit --token-file, then
// NODALMERGE_TOKEN, then the default file, as for `nodalmerge admin`.
func TestAdminTokenPrecedence(t *testing.T) {
	dir := t.TempDir()
	def, explicit, empty := filepath.Join(dir, "default"), filepath.Join(dir, "explicit"), filepath.Join(dir, "empty")
	for path, body := range map[string]string{def: "from-default\n", explicit: " from-file \n", empty: "\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, a adminFlags, fileGiven bool, path, want string) {
		t.Helper()
		got, err := a.callerToken(fileGiven, path)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	t.Setenv(envToken, "from-env")
	check("flag wins", adminFlags{token: "from-flag"}, true, explicit, "from-flag")
	check("explicit file beats env", adminFlags{}, true, explicit, "from-file")
	check("env beats default file", adminFlags{}, false, def, "from-env")
	t.Setenv(envToken, "")
	check("default file", adminFlags{}, false, def, "from-default")
	if _, err := (&adminFlags{}).callerToken(true, empty); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
}

// TestSecurityBadFlagsNameTheFlag: the locked-room and revoke scenarios
// map their config errors back to flags, and never echo a seed.
func TestSecurityBadFlagsNameTheFlag(t *testing.T) {
	state := stateDir(t, "tok")
	seed := strings.Repeat("ab", 31) + "zz"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"joinstorm", "--room-key-seed", strings.Repeat("00", 32)}, "invalid --room-key-seed: only applies with Locked"},
		{[]string{"joinstorm", "--locked", "--hold"}, "invalid --connections: is required with Hold and Locked"},
		{[]string{"joinstorm", "--locked", "--admin", "nohost"}, "invalid --admin: must be host:port"},
		{[]string{"joinstorm", "--locked", "--room-key-seed", seed}, "invalid --room-key-seed: must be hex digits"},
		{[]string{"joinstorm", "--locked", "--room-key-seed", "abcd"}, "invalid --room-key-seed: must be 64 hex digits"},
		{[]string{"joinstorm", "--locked", "--tls-ca", "/nonexistent/ca.pem"}, "--tls-ca/--tls-cert/--tls-key"},
		{[]string{"revoke", "--sessions", "0"}, "invalid --sessions: must be at least 1"},
		{[]string{"revoke", "--peers", "400"}, "invalid --peers: must be between 1 and the sessions (300)"},
		{[]string{"revoke", "--by", "key"}, `invalid --by: must be "token" or "peer"`},
		{[]string{"revoke", "--rounds", "0"}, "invalid --rounds"},
		{[]string{"revoke", "--close-timeout", "0s"}, "invalid --close-timeout"},
		{[]string{"revoke", "--url", "ws://127.0.0.1:1,http://127.0.0.1:2"}, "invalid --url: must be ws://"},
		{[]string{"revoke", "--room-key-seed", seed}, "invalid --room-key-seed"},
		{[]string{"revoke", "--server-pid", "5"}, "invalid --server-pid"},
		{[]string{"revoke", "--token-file", "/nonexistent/token"}, "--token-file: read the operator token"},
		{[]string{"revoke", "extra"}, "takes no arguments"},
	} {
		_, _, err := run(t, append(c.args, "--state-dir", state)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), seed) {
			t.Errorf("%v: the error carries the seed: %v", c.args, err)
		}
	}
}

// TestRevokeUnreachable runs revoke for real against an admin port
// nothing listens on: setting the first room's key fails, and the command
// says where and why without the token.
func TestRevokeUnreachable(t *testing.T) {
	state := stateDir(t, "secret-token")
	_, _, err := run(t, "revoke", "-q", "--state-dir", state, "--admin", "127.0.0.1:1", "--url", "ws://127.0.0.1:1", "--sessions", "2")
	if err == nil || !strings.Contains(err.Error(), "set-room-key on room bench-") || !strings.Contains(err.Error(), "via 127.0.0.1:1 failed: UNAVAILABLE") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("error names the token: %v", err)
	}
}
