package token

import (
	"slices"
	"strings"
)

// CapClusterNode is the capability of node-to-node calls. It is held only
// by node certificates: a bearer token carrying it is refused at mint and
// treated as malformed at verify, so a leaked token can never act as a node.
const CapClusterNode = "cluster.node"

// HasCap reports whether caps holds exactly c. Capabilities are exact
// strings (SPEC section 4): no prefixes, no wildcards.
func HasCap(caps []string, c string) bool {
	return slices.Contains(caps, c)
}

// RoomAllowed reports whether room is inside a token's room globs. An empty
// list allows every room. In a glob, "**" matches any run of characters
// (including '/'), "*" matches any run of characters except '/', and every
// other character matches itself.
func RoomAllowed(rooms []string, room string) bool {
	if len(rooms) == 0 {
		return true
	}
	for _, g := range rooms {
		if globMatch(g, room) {
			return true
		}
	}
	return false
}

// globMatch runs in O(len(pattern)·len(name)) time and O(len(name)) space
// (dynamic programming, no backtracking), so a hostile pattern such as
// "*a*a*a*a*b" cannot make it exponential.
func globMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	// cur[j]: the pattern consumed so far matches name[:j].
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for i := 0; i < len(pattern); {
		clear(next)
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			// Any run: once a prefix matches, every longer one does.
			seen := false
			for j := 0; j <= len(name); j++ {
				seen = seen || cur[j]
				next[j] = seen
			}
			i += 2
		case pattern[i] == '*':
			// A run of non-'/' characters.
			for j := 0; j <= len(name); j++ {
				next[j] = cur[j] || (j > 0 && next[j-1] && name[j-1] != '/')
			}
			i++
		default:
			c := pattern[i]
			for j := 1; j <= len(name); j++ {
				next[j] = cur[j-1] && name[j-1] == c
			}
			i++
		}
		cur, next = next, cur
	}
	return cur[len(name)]
}
