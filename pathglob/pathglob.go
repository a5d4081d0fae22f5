package pathglob

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every Compile error.
var ErrInvalid = errors.New("invalid pattern")

// segKind says how one pattern segment matches.
type segKind uint8

const (
	segLiteral segKind = iota // equal to the text
	segOne                    // "*": any one segment
	segMulti                  // "**": zero or more segments
	segGlob                   // '*' among other characters, inside one segment
)

type segment struct {
	kind segKind
	text string   // segLiteral: the literal
	glob []string // segGlob: the literal parts between the stars (len >= 2)
}

// Pattern is a compiled pattern. The zero value matches nothing.
type Pattern struct {
	src  string
	segs []segment
	all  bool // the pattern is "**" (or "**/**/..."): everything matches
}

// Compile parses a pattern. It refuses an empty pattern, an empty segment
// (a leading, trailing or doubled '/'), and "**" mixed with other
// characters in one segment, each with an error that says which.
func Compile(pattern string) (Pattern, error) {
	if pattern == "" {
		return Pattern{}, fmt.Errorf("%w: empty pattern", ErrInvalid)
	}
	p := Pattern{src: pattern, all: true}
	rest := pattern
	for i := 0; ; i++ {
		seg, tail, more := strings.Cut(rest, "/")
		s, err := compileSegment(seg, i)
		if err != nil {
			return Pattern{}, err
		}
		if s.kind != segMulti {
			p.all = false
		}
		// Consecutive "**" are one "**": it keeps matching linear.
		if !(s.kind == segMulti && len(p.segs) > 0 && p.segs[len(p.segs)-1].kind == segMulti) {
			p.segs = append(p.segs, s)
		}
		if !more {
			break
		}
		rest = tail
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be valid (constants); it
// panics on an invalid one.
func MustCompile(pattern string) Pattern {
	p, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

func compileSegment(seg string, i int) (segment, error) {
	switch {
	case seg == "":
		return segment{}, fmt.Errorf("%w: segment %d is empty (no leading, trailing or doubled '/')", ErrInvalid, i+1)
	case seg == "**":
		return segment{kind: segMulti}, nil
	case seg == "*":
		return segment{kind: segOne}, nil
	case strings.Contains(seg, "**"):
		return segment{}, fmt.Errorf("%w: segment %d: '**' must be a whole segment", ErrInvalid, i+1)
	case strings.Contains(seg, "*"):
		return segment{kind: segGlob, glob: strings.Split(seg, "*")}, nil
	}
	return segment{kind: segLiteral, text: seg}, nil
}

// String returns the pattern as it was compiled.
func (p Pattern) String() string { return p.src }

// MatchesEverything reports whether the pattern matches every path ("**"),
// which lets callers skip matching altogether.
func (p Pattern) MatchesEverything() bool { return p.all }

// Match reports whether path matches the whole pattern.
//
// It is the classic wildcard algorithm over segments: walk pattern and path
// together; at a "**" remember where it is, and on a mismatch let the last
// "**" swallow one more segment and retry from there. Only the last "**"
// needs remembering, so the cost is at most segments(pattern) ×
// segments(path) segment comparisons, with no allocation.
func (p Pattern) Match(path string) bool {
	if p.all {
		return true
	}
	segs := p.segs
	end := len(path) + 1 // offset past the last segment
	pi, off := 0, 0
	starPi, starOff := -1, 0
	for off != end {
		if pi < len(segs) && segs[pi].kind == segMulti {
			starPi, starOff = pi, off
			pi++
			continue
		}
		seg, next := nextSegment(path, off)
		if pi < len(segs) && segs[pi].match(seg) {
			pi++
			off = next
			continue
		}
		if starPi < 0 {
			return false
		}
		_, starOff = nextSegment(path, starOff)
		pi, off = starPi+1, starOff
	}
	for pi < len(segs) && segs[pi].kind == segMulti {
		pi++
	}
	return pi == len(segs)
}

// nextSegment returns the segment starting at off and the offset of the one
// after it (len(path)+1 after the last).
func nextSegment(path string, off int) (string, int) {
	if j := strings.IndexByte(path[off:], '/'); j >= 0 {
		return path[off : off+j], off + j + 1
	}
	return path[off:], len(path) + 1
}

func (s *segment) match(seg string) bool {
	switch s.kind {
	case segLiteral:
		return seg == s.text
	case segOne:
		return true
	case segGlob:
		return globMatch(s.glob, seg)
	}
	return false
}

// globMatch matches seg against parts, the literal runs between stars:
// seg must start with the first, end with the last and hold the others in
// order between them. Taking the leftmost occurrence of each middle part
// is always right for '*'-only globs.
func globMatch(parts []string, seg string) bool {
	first, last := parts[0], parts[len(parts)-1]
	if len(seg) < len(first)+len(last) || !strings.HasPrefix(seg, first) || !strings.HasSuffix(seg, last) {
		return false
	}
	mid := seg[len(first) : len(seg)-len(last)]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(mid, part)
		if i < 0 {
			return false
		}
		mid = mid[i+len(part):]
	}
	return true
}

// MatchAny reports whether path matches at least one of patterns.
func MatchAny(patterns []Pattern, path string) bool {
	for i := range patterns {
		if patterns[i].Match(path) {
			return true
		}
	}
	return false
}

// CompileAll compiles a list of patterns, naming the position of the first
// bad one.
func CompileAll(patterns []string) ([]Pattern, error) {
	out := make([]Pattern, len(patterns))
	for i, s := range patterns {
		p, err := Compile(s)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}
