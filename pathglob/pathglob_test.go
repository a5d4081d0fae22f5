package pathglob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"**", []string{"", "a", "a/b/c", "world/player/7"}, nil},
		{"world", []string{"world"}, []string{"world/x", "worldx", "x/world", ""}},
		{"world/**", []string{"world", "world/x", "world/x/y"}, []string{"worldx", "worldx/y", "x/world", "wor"}},
		{"world/*", []string{"world/x", "world/"}, []string{"world", "world/x/y", "x/y"}},
		{"world/*/hp", []string{"world/p1/hp", "world//hp"}, []string{"world/hp", "world/a/b/hp", "world/p1/hp/x"}},
		{"a/**/c", []string{"a/c", "a/b/c", "a/b/b/c", "a/c/c"}, []string{"a/cc", "ab/c", "a/c/d", "c"}},
		{"**/msg", []string{"msg", "a/msg", "a/b/msg"}, []string{"amsg", "msg/x", "a/msgs"}},
		{"**/a/**", []string{"a", "x/a", "a/x", "x/a/y/z"}, []string{"", "ab", "x/ba/y"}},
		{"**/**/x", []string{"x", "a/x", "a/b/x"}, []string{"a/xy"}},
		{"*", []string{"a", "", "anything"}, []string{"a/b", "/"}},
		{"*/*", []string{"a/b", "/"}, []string{"a", "a/b/c"}},
		{"player*", []string{"player", "player7", "players"}, []string{"play", "player/7", "xplayer"}},
		{"*.png", []string{"a.png", ".png"}, []string{"a.png/x", "a.jpg", "dir/a.png"}},
		{"p*y*r", []string{"pyr", "player", "pyyr"}, []string{"pr", "pyx", "playerx", "rpy"}},
		{"a*a", []string{"aa", "aba", "aaa"}, []string{"a", "ab"}},
		{"img/**/*.png", []string{"img/a.png", "img/x/y/a.png"}, []string{"img/a.jpg", "a.png", "img/x/a.png/b"}},
	}
	for _, c := range cases {
		p, err := pathglob.Compile(c.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.pattern, err)
		}
		if p.String() != c.pattern {
			t.Errorf("String() = %q, want %q", p.String(), c.pattern)
		}
		for _, path := range c.yes {
			if !p.Match(path) {
				t.Errorf("%q does not match %q", c.pattern, path)
			}
		}
		for _, path := range c.no {
			if p.Match(path) {
				t.Errorf("%q matches %q", c.pattern, path)
			}
		}
	}
}

func TestCompileRejects(t *testing.T) {
	cases := map[string]string{
		"":        "invalid pattern: empty pattern",
		"/a":      "invalid pattern: segment 1 is empty (no leading, trailing or doubled '/')",
		"a/":      "invalid pattern: segment 2 is empty (no leading, trailing or doubled '/')",
		"a//b":    "invalid pattern: segment 2 is empty (no leading, trailing or doubled '/')",
		"/":       "invalid pattern: segment 1 is empty (no leading, trailing or doubled '/')",
		"a/b**":   "invalid pattern: segment 2: '**' must be a whole segment",
		"***":     "invalid pattern: segment 1: '**' must be a whole segment",
		"x/**y/z": "invalid pattern: segment 2: '**' must be a whole segment",
	}
	for in, want := range cases {
		_, err := pathglob.Compile(in)
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%q) = %v, want %q", in, err, want)
		}
		if err != nil && !errors.Is(err, pathglob.ErrInvalid) {
			t.Errorf("Compile(%q): %v does not wrap ErrInvalid", in, err)
		}
	}
}

func TestMatchesEverythingAndZeroValue(t *testing.T) {
	for _, s := range []string{"**", "**/**"} {
		if !pathglob.MustCompile(s).MatchesEverything() {
			t.Errorf("%q should match everything", s)
		}
	}
	for _, s := range []string{"*", "a/**", "**/a"} {
		if pathglob.MustCompile(s).MatchesEverything() {
			t.Errorf("%q claims to match everything", s)
		}
	}
	var zero pathglob.Pattern
	if zero.Match("") || zero.Match("a") {
		t.Fatal("the zero Pattern matched")
	}
}

func TestMatchAnyAndCompileAll(t *testing.T) {
	ps, err := pathglob.CompileAll([]string{"chat/*", "world/**"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{"chat/1": true, "world": true, "world/a/b": true, "chat/1/2": false, "other": false} {
		if got := pathglob.MatchAny(ps, path); got != want {
			t.Errorf("MatchAny(%q) = %v", path, got)
		}
	}
	if pathglob.MatchAny(nil, "a") {
		t.Fatal("no patterns matched a path")
	}
	if _, err := pathglob.CompileAll([]string{"ok", "bad//"}); err == nil || !strings.HasPrefix(err.Error(), "entry 1: ") {
		t.Fatalf("CompileAll error = %v", err)
	}
}

func TestMustCompilePanicsOnBadPattern(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	pathglob.MustCompile("a//b")
}

// oracle is a direct recursive reading of the rules, used to check the
// iterative matcher.
func oracle(pattern []string, path []string) bool {
	if len(pattern) == 0 {
		return len(path) == 0
	}
	if pattern[0] == "**" {
		for i := 0; i <= len(path); i++ {
			if oracle(pattern[1:], path[i:]) {
				return true
			}
		}
		return false
	}
	return len(path) > 0 && oracleSegment(pattern[0], path[0]) && oracle(pattern[1:], path[1:])
}

// oracleSegment matches one segment with '*' as "any run", recursively.
func oracleSegment(p, s string) bool {
	if p == "" {
		return s == ""
	}
	if p[0] == '*' {
		for i := 0; i <= len(s); i++ {
			if oracleSegment(p[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	return s != "" && s[0] == p[0] && oracleSegment(p[1:], s[1:])
}

func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"**", ""}, {"world/**", "world/x"}, {"a/**/c", "a/b/c"}, {"*.png", "a.png"},
		{"p*y*r", "player"}, {"**/a/**/b", "x/a/y/b"}, {"a//b", "a//b"}, {"a**", "ab"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if len(pattern) > 64 || len(path) > 64 {
			return // keep the exponential oracle cheap
		}
		p, err := pathglob.Compile(pattern)
		if err != nil {
			if !errors.Is(err, pathglob.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q", p.String())
		}
		got := p.Match(path)
		if want := oracle(strings.Split(pattern, "/"), strings.Split(path, "/")); got != want {
			t.Fatalf("Match(%q, %q) = %v, oracle says %v", pattern, path, got, want)
		}
		if p.MatchesEverything() && !got {
			t.Fatalf("%q claims to match everything but not %q", pattern, path)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	p := pathglob.MustCompile("world/**/player*/hp")
	for b.Loop() {
		if !p.Match("world/zone/3/player17/hp") {
			b.Fatal("no match")
		}
	}
}
