package token

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHasCap(t *testing.T) {
	caps := []string{"cluster.read", "room.admin"}
	for c, want := range map[string]bool{
		"cluster.read": true, "room.admin": true, "cluster": false, "cluster.admin": false,
		"room.admin ": false, "": false, "*": false,
	} {
		if HasCap(caps, c) != want {
			t.Errorf("HasCap(%q) = %v", c, !want)
		}
	}
	if HasCap(nil, "cluster.read") {
		t.Error("nil caps hold a capability")
	}
}

func TestRoomAllowed(t *testing.T) {
	for _, tc := range []struct {
		rooms []string
		room  string
		want  bool
	}{
		{nil, "anything/at/all", true},
		{[]string{}, "x", true},
		{[]string{"lobby"}, "lobby", true},
		{[]string{"lobby"}, "lobby2", false},
		{[]string{"lobby"}, "Lobby", false},
		{[]string{"team/*"}, "team/a", true},
		{[]string{"team/*"}, "team/", true},
		{[]string{"team/*"}, "team/a/b", false},
		{[]string{"team/*"}, "team", false},
		{[]string{"team/**"}, "team/a/b", true},
		{[]string{"team/**"}, "team/", true},
		{[]string{"team/**"}, "teams/a", false},
		{[]string{"*"}, "lobby", true},
		{[]string{"*"}, "a/b", false},
		{[]string{"**"}, "a/b/c", true},
		{[]string{"*-prod"}, "eu-prod", true},
		{[]string{"*-prod"}, "eu/x-prod", false},
		{[]string{"a/*/c"}, "a/b/c", true},
		{[]string{"a/*/c"}, "a/b/b/c", false},
		{[]string{"a/**/c"}, "a/b/b/c", true},
		{[]string{"a.b"}, "aXb", false},
		{[]string{"x", "team/*"}, "team/q", true},
		{[]string{"x", "y"}, "z", false},
	} {
		if got := RoomAllowed(tc.rooms, tc.room); got != tc.want {
			t.Errorf("RoomAllowed(%q, %q) = %v, want %v", tc.rooms, tc.room, got, tc.want)
		}
	}
}

func TestGlobNotExponential(t *testing.T) {
	pattern := strings.Repeat("*a", 200) + "b"
	name := strings.Repeat("a", 4000)
	if globMatch(pattern, name) { // finishes quickly, and correctly: no 'b'
		t.Fatal("matched without a b")
	}
}

// globRegexp is an independent oracle for the glob semantics.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); {
		switch {
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(`.*`)
			i += 2
		case p[i] == '*':
			b.WriteString(`[^/]*`)
			i++
		default:
			_, n := utf8.DecodeRuneInString(p[i:])
			b.WriteString(regexp.QuoteMeta(p[i : i+n]))
			i += n
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

// FuzzRoomAllowed checks the matcher against the regexp oracle.
func FuzzRoomAllowed(f *testing.F) {
	for _, s := range [][2]string{{"team/*", "team/a"}, {"a/**/c", "a/b/c"}, {"***", "a/b"}, {"*/*", "x/"}, {"a*b*c", "aXbYc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, room string) {
		if len(pattern) > 64 || len(room) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(room) {
			return
		}
		got := RoomAllowed([]string{pattern}, room)
		if want := globRegexp(pattern).MatchString(room); got != want {
			t.Fatalf("RoomAllowed(%q, %q) = %v, oracle says %v", pattern, room, got, want)
		}
	})
}
