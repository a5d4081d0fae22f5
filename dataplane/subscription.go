package dataplane

import (
	"strings"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// subscription is a session's compiled subscribe patterns. A node is
// delivered when any of its ops' paths matches any pattern; a node with no
// ops carries no path to filter on and goes to everyone. It is immutable:
// a new subscribe replaces the session's pointer (under the room lock), so
// a catch-up queued earlier keeps the patterns it was queued with.
type subscription struct {
	patterns []pathglob.Pattern
	// read holds the session token's read: grants (nil: no path limit). A
	// node is delivered only when every op path is inside them: a node
	// touching one unreadable path would leak that path's value.
	read []pathglob.Pattern
	all  bool
	// key identifies the pattern list, so that a relay is filtered and
	// encoded once per distinct subscription, not once per session.
	key string
}

// everything is the default subscription ("**").
var everything = &subscription{patterns: []pathglob.Pattern{pathglob.MustCompile("**")}, all: true, key: "**"}

// newSubscription compiles patterns; nil (hello without subscribe) means
// everything. An empty list subscribes to nothing. read is the session's
// compiled read: grants (nil: no limit); readKey identifies them.
func newSubscription(patterns []string, read []pathglob.Pattern, readKey string) (*subscription, error) {
	if patterns == nil {
		patterns = []string{"**"}
	}
	ps, err := pathglob.CompileAll(patterns)
	if err != nil {
		return nil, err
	}
	s := &subscription{patterns: ps, read: read, key: strings.Join(patterns, "\x00")}
	if read != nil {
		// The read grants are part of what a relay is filtered and
		// encoded for; \x01 cannot occur in a pattern.
		s.key += "\x01" + readKey
	}
	for _, p := range ps {
		if p.MatchesEverything() {
			if read == nil {
				return everything, nil
			}
			s.patterns, s.key = everything.patterns, "**\x01"+readKey
			break
		}
	}
	return s, nil
}

// matches reports whether a node with these op paths is delivered.
func (s *subscription) matches(paths []string) bool {
	if s.all || len(paths) == 0 {
		return true
	}
	if s.read != nil {
		for _, p := range paths {
			if !pathglob.MatchAny(s.read, p) {
				return false
			}
		}
	}
	for _, p := range paths {
		if pathglob.MatchAny(s.patterns, p) {
			return true
		}
	}
	return false
}

// opPaths lists the op paths of a decoded transaction.
func opPaths(tx *syncv1.Transaction) []string {
	ops := tx.GetOps()
	paths := make([]string, len(ops))
	for i, op := range ops {
		paths[i] = op.GetPath()
	}
	return paths
}

// filterNodes keeps the stored nodes s matches, decoding each transaction
// for its paths (catch-up of a filtered session; stored nodes decode).
func (s *subscription) filterNodes(nodes []*syncv1.Node) []*syncv1.Node {
	if s.all {
		return nodes
	}
	out := make([]*syncv1.Node, 0, len(nodes))
	var tx syncv1.Transaction
	for _, n := range nodes {
		tx.Reset()
		if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil {
			continue // cannot happen for a stored node; never leak one
		}
		if s.matches(opPaths(&tx)) {
			out = append(out, n)
		}
	}
	return out
}
