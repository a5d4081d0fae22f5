package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runRoot runs the CLI in-process with args and answers its error and output.
func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestTokenOperatorDefaultsComeFromStateDir(t *testing.T) {
	f := operatorTokenFlags{stateDir: "/s", tlsKey: "/elsewhere/key.pem"}
	f.resolve()
	want := operatorTokenFlags{
		stateDir: "/s", tlsCA: "/s/tls/ca.pem", tlsCert: "/s/tls/operator.pem", tlsKey: "/elsewhere/key.pem",
		tokenFile: "/s/bootstrap-operator.token",
	}
	if f.tlsCA != want.tlsCA || f.tlsCert != want.tlsCert || f.tlsKey != want.tlsKey || f.tokenFile != want.tokenFile {
		t.Errorf("resolved %+v, want %+v", f, want)
	}
}

func TestTokenOperatorErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "caller.token")
	if err := os.WriteFile(full, []byte("a.b.c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"subject and caps are required", nil, `required flag(s) "caps", "subject" not set`},
		{"missing token file", []string{"--subject", "s", "--caps", "cluster.read", "--state-dir", filepath.Join(dir, "none")}, "--token-file: read the calling token"},
		{"empty token file", []string{"--subject", "s", "--caps", "cluster.read", "--token-file", empty}, "--token-file " + empty + ": file is empty"},
		{"non-positive ttl", []string{"--subject", "s", "--caps", "cluster.read", "--ttl", "0s"}, "--ttl 0s: must be positive"},
		{"missing TLS material", []string{"--subject", "s", "--caps", "cluster.read", "--token-file", full, "--state-dir", dir}, "--tls-ca/--tls-cert/--tls-key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runRoot(t, append([]string{"token", "operator"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(out, "a.b.c") {
				t.Errorf("output echoes the calling token: %q", out)
			}
		})
	}
}
