package dataplane

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidRoomName(t *testing.T) {
	for _, ok := range []string{"a", "Room-1", "x.y_z~", "a:b@c", "!$&'()*+,;=", strings.Repeat("r", 128)} {
		if !validRoomName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "a/b", "a b", "é", "a%2F", "a?b", "a#b", strings.Repeat("r", 129), "\x00"} {
		if validRoomName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzValidRoomName(f *testing.F) {
	for _, s := range []string{"lobby", "a/b", "", "é", strings.Repeat("x", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validRoomName(name) {
			return
		}
		if len(name) == 0 || len(name) > MaxRoomNameBytes || strings.ContainsAny(name, "/ \\%?#\x00") || !utf8.ValidString(name) {
			t.Fatalf("accepted %q", name)
		}
	})
}

func TestCloseReasonFitsAControlFrame(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := closeReason(long)
	if len(got) > maxCloseReasonSize || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Fatalf("closeReason = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if closeReason("short") != "short" {
		t.Fatal("short reason changed")
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com/": "https://app.example.com",
		"http://localhost:3000":    "http://localhost:3000",
	} {
		if got, err := normalizeOrigin(in); err != nil || got != want {
			t.Errorf("normalizeOrigin(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"app.example.com", "ftp://x", "https://x/path", "https://", "null", "*"} {
		if _, err := normalizeOrigin(bad); err == nil {
			t.Errorf("normalizeOrigin(%q) accepted", bad)
		}
	}
}
