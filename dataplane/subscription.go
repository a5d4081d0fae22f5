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
	all      bool
	// key identifies the pattern list, so that a relay is filtered and
	// encoded once per distinct subscription, not once per session.
	key string
}

// everything is the default subscription ("**").
var everything = &subscription{patterns: []pathglob.Pattern{pathglob.MustCompile("**")}, all: true, key: "**"}

// newSubscription compiles patterns; nil (hello without subscribe) means
// everything. An empty list subscribes to nothing.
func newSubscription(patterns []string) (*subscription, error) {
	if patterns == nil {
		return everything, nil
	}
	ps, err := pathglob.CompileAll(patterns)
	if err != nil {
		return nil, err
	}
	s := &subscription{patterns: ps, key: strings.Join(patterns, "\x00")}
	for _, p := range ps {
		if p.MatchesEverything() {
			return everything, nil
		}
	}
	return s, nil
}

// matches reports whether a node with these op paths is delivered.
func (s *subscription) matches(paths []string) bool {
	if s.all || len(paths) == 0 {
		return true
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
