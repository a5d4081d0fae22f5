package roomname

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"lobby", true},
		{"a", true},
		{"Game-7_x.y~z:1@h!$&'()*+,;=", true},
		{strings.Repeat("r", MaxBytes), true},
		{"", false},
		{strings.Repeat("r", MaxBytes+1), false},
		{"a/b", false},
		{"a b", false},
		{"a%2Fb", false},
		{"é", false},
		{"a\x00", false},
		{"a?b", false},
		{"a#b", false},
	} {
		if got := Valid(tc.name); got != tc.ok {
			t.Errorf("Valid(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add("lobby")
	f.Add("a/b")
	f.Add("")
	f.Fuzz(func(t *testing.T, name string) {
		if !Valid(name) {
			return
		}
		if len(name) == 0 || len(name) > MaxBytes || strings.ContainsAny(name, "/ \x00%?#") {
			t.Fatalf("Valid accepted %q", name)
		}
	})
}
