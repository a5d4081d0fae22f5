package token

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Path-grant prefixes of room-token caps (SPEC section 3, ext): read:<glob>
// limits subscribe and catch-up, write:<glob> limits ingest.
const (
	ReadGrantPrefix  = "read:"
	WriteGrantPrefix = "write:"
)

// Bounds on a room token's caps. Real tokens carry a handful; the limits
// keep the signed message and the per-session grant lists small.
const (
	MaxRoomCaps     = 64
	MaxRoomCapBytes = 256
)

// ValidateRoomCaps reports whether caps can be carried by a room token:
// at most MaxRoomCaps entries, each 1..MaxRoomCapBytes bytes of valid
// UTF-8 without '\n', no path grant with an empty glob, and never
// cluster.node. The '\n' and empty-cap rules are what make the signed
// message unambiguous (["a\nb"] and ["a","b"], or [] and [""], would
// otherwise sign the same bytes); UTF-8 is required because a cap must
// survive the JSON of hello.token unchanged. Errors name the cap's index,
// never its text.
func ValidateRoomCaps(caps []string) error {
	if len(caps) > MaxRoomCaps {
		return fmt.Errorf("token: %d caps, at most %d", len(caps), MaxRoomCaps)
	}
	for i, c := range caps {
		switch {
		case c == "":
			return fmt.Errorf("token: cap %d is empty", i)
		case len(c) > MaxRoomCapBytes:
			return fmt.Errorf("token: cap %d is longer than %d bytes", i, MaxRoomCapBytes)
		case strings.IndexByte(c, '\n') >= 0:
			return fmt.Errorf("token: cap %d contains a newline", i)
		case !utf8.ValidString(c):
			return fmt.Errorf("token: cap %d is not valid UTF-8", i)
		case c == ReadGrantPrefix || c == WriteGrantPrefix:
			return fmt.Errorf("token: cap %d is a path grant without a glob", i)
		case c == CapClusterNode:
			return errors.New("token: capability " + CapClusterNode + " is held only by node certificates")
		}
	}
	return nil
}

// ReadGrants returns the globs of the read:<glob> caps, in order; nil when
// there are none (no read limit).
func ReadGrants(caps []string) []string { return grants(caps, ReadGrantPrefix) }

// WriteGrants returns the globs of the write:<glob> caps, in order; nil
// when there are none (no write limit).
func WriteGrants(caps []string) []string { return grants(caps, WriteGrantPrefix) }

// CapabilityClasses returns the caps that are not path grants (the
// capability classes of SPEC section 4), in order; nil when there are none.
func CapabilityClasses(caps []string) []string {
	var out []string
	for _, c := range caps {
		if !strings.HasPrefix(c, ReadGrantPrefix) && !strings.HasPrefix(c, WriteGrantPrefix) {
			out = append(out, c)
		}
	}
	return out
}

func grants(caps []string, prefix string) []string {
	var out []string
	for _, c := range caps {
		if g, ok := strings.CutPrefix(c, prefix); ok {
			out = append(out, g)
		}
	}
	return out
}
