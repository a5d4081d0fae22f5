package raftstore

import (
	"fmt"
	"unicode/utf8"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// Registered queries (query.register). The rules live here, once: the
// control plane checks requests with ValidQueryName so that its messages
// and the state machine's never disagree.
const (
	// MaxRoomQueries bounds a room's registered queries: each one may be
	// built into a projection on every node, and the definitions ride in
	// every snapshot.
	MaxRoomQueries = 64
	// MaxQueryNameLen bounds a query name: it appears in logs, errors and
	// cache keys.
	MaxQueryNameLen = 64
	// MaxQueryDescriptionLen bounds a query's free-text description.
	MaxQueryDescriptionLen = 256
	// QueryNameHelp says what a query name may be.
	QueryNameHelp = "a query name is 1 to 64 characters from A-Z a-z 0-9 and _ . -, starting with a letter or digit"
)

// ValidQueryName reports whether name is a query name: a short
// identifier, safe to log and to put in an error or a URL unquoted.
func ValidQueryName(name string) bool {
	if name == "" || len(name) > MaxQueryNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validatePutQuery checks a PutQuery as proposed. The state machine
// stamps created_unix_ms and raft_index itself, so their proposed values
// do not matter.
func validatePutQuery(c *statev1.PutQuery) error {
	if err := validateRoom(c.GetRoom()); err != nil {
		return err
	}
	return validateQuery(c.GetQuery())
}

// validateQuery checks a definition: name shape, a pattern that compiles
// (pathglob is deterministic, so every replica decides alike), bounded
// printable description and actor.
func validateQuery(q *statev1.RegisteredQuery) error {
	if q == nil {
		return fmt.Errorf("missing query")
	}
	if !ValidQueryName(q.GetName()) {
		return fmt.Errorf("query name %s: %s", clipq(q.GetName()), QueryNameHelp)
	}
	glob := q.GetPathGlob()
	if len(glob) > maxPathGlobLen {
		return fmt.Errorf("query %s: path glob longer than %d bytes", q.GetName(), maxPathGlobLen)
	}
	if !utf8.ValidString(glob) {
		return fmt.Errorf("query %s: path glob is not UTF-8", q.GetName())
	}
	if _, err := pathglob.Compile(glob); err != nil {
		return fmt.Errorf("query %s: path glob %s: %w", q.GetName(), clipq(glob), err)
	}
	if d := q.GetDescription(); d != "" {
		if err := validateLabel("description", d, MaxQueryDescriptionLen, true); err != nil {
			return fmt.Errorf("query %s: %w", q.GetName(), err)
		}
	}
	if a := q.GetActor(); a != "" {
		if err := validateLabel("actor", a, maxActorLen, true); err != nil {
			return fmt.Errorf("query %s: %w", q.GetName(), err)
		}
	}
	return nil
}

// validateStoredQueries checks a room's stored queries against what
// applyPutQuery produces: valid definitions, stamped, sorted by name
// without duplicates, at most MaxRoomQueries.
func validateStoredQueries(qs []*statev1.RegisteredQuery) error {
	if len(qs) > MaxRoomQueries {
		return fmt.Errorf("%d queries, more than %d", len(qs), MaxRoomQueries)
	}
	for i, q := range qs {
		if err := validateQuery(q); err != nil {
			return err
		}
		if q.GetCreatedUnixMs() <= 0 || q.GetRaftIndex() == 0 {
			return fmt.Errorf("query %s without registration time or index", q.GetName())
		}
		if i > 0 && qs[i-1].GetName() >= q.GetName() {
			return fmt.Errorf("queries not sorted by name or duplicated")
		}
	}
	return nil
}
