package main

import (
	"strings"
	"testing"
)

// TestApplyEnv: NODALMERGE_<FLAG> fills flags the command line left unset,
// --listen falls back to NODALMERGE_BIND_ADDR then AS_BIND_ADDR, the command
// line wins, and a bad value names its variable.
func TestApplyEnv(t *testing.T) {
	t.Setenv("NODALMERGE_ADMIN_LISTEN", "127.0.0.1:9001")
	t.Setenv("AS_BIND_ADDR", "127.0.0.1:9002")
	t.Setenv("NODALMERGE_MAX_FRAME_BYTES", "65536")
	t.Setenv("NODALMERGE_RAFT_LISTEN", "127.0.0.1:9003")
	cmd := newServeCommand()
	if err := cmd.ParseFlags([]string{"--raft-listen", "127.0.0.1:9100"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"admin-listen":    "127.0.0.1:9001",
		"listen":          "127.0.0.1:9002",
		"max-frame-bytes": "65536",
		"raft-listen":     "127.0.0.1:9100", // the command line wins
	} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}

	t.Setenv("NODALMERGE_BIND_ADDR", "127.0.0.1:9004")
	cmd = newServeCommand()
	if err := applyEnv(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("listen").Value.String(); got != "127.0.0.1:9004" {
		t.Errorf("--listen = %q, want NODALMERGE_BIND_ADDR to win over AS_BIND_ADDR", got)
	}

	t.Setenv("NODALMERGE_HANDSHAKE_TIMEOUT", "soon")
	err := applyEnv(newServeCommand().Flags())
	if err == nil || !strings.Contains(err.Error(), "NODALMERGE_HANDSHAKE_TIMEOUT") || !strings.Contains(err.Error(), "--handshake-timeout") {
		t.Errorf("bad env value: %v, want an error naming the variable and the flag", err)
	}
}

// TestLoggerFlags: bad --log-level and --log-format values are refused by
// name.
func TestLoggerFlags(t *testing.T) {
	if _, err := newLogger("loud", "text"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("bad level: %v", err)
	}
	if _, err := newLogger("info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("bad format: %v", err)
	}
	if _, err := newLogger("debug", "json"); err != nil {
		t.Errorf("debug/json: %v", err)
	}
}
