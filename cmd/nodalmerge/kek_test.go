package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/keyring"
)

func TestKEKCreate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "kek")
	stdout, err := runRoot(t, "kek", "create", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("kek file: %v, %v; want mode 0600", info, err)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(text) {
		t.Fatalf("kek file is not 64 hex digits and a newline (%d bytes)", len(text))
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kek_id " + kek.ID() + "\n"; !strings.Contains(stdout, want) {
		t.Fatalf("stdout %q lacks %q", stdout, want)
	}
	if strings.Contains(stdout, strings.TrimSpace(string(text))) {
		t.Fatal("the key itself was printed")
	}
	// Never overwritten.
	if _, err := runRoot(t, "kek", "create", "--out", out); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("second create over the same file: %v", err)
	}
	again, _ := os.ReadFile(out)
	if string(again) != string(text) {
		t.Fatal("the existing key was changed")
	}
	if _, err := runRoot(t, "kek", "create"); err == nil || !strings.Contains(err.Error(), "out") {
		t.Fatalf("create without --out: %v", err)
	}
}

// TestServeRefusesBadKeyFlags: serve fails at start, naming the flag, for
// a group-readable KEK file and a zero rotation grace.
func TestServeRefusesBadKeyFlags(t *testing.T) {
	kek := filepath.Join(t.TempDir(), "kek")
	if _, err := runRoot(t, "kek", "create", "--out", kek); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kek, 0o644); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	common := []string{"serve", "--store", store, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--kek-file", kek}, "--kek-file"},
		{[]string{"--key-rotation-grace", "0s"}, "--key-rotation-grace"},
		{[]string{"--key-rotation-interval", "1h", "--key-rotation-prepublish", "2h"}, "--key-rotation-prepublish"},
	} {
		_, err := runRoot(t, append(common, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("serve %v: %v; want an error naming %s", tc.args, err, tc.flag)
		}
	}
}
