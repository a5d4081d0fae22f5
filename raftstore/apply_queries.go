package raftstore

import (
	"slices"
	"strings"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// applyPutQuery registers a query in its room, or replaces the definition
// with the same name (its pattern, description and actor). The definition
// is stamped with the proposed time and its log index, so a node can tell
// a projection built from an older definition. A new name in a room that
// already holds MaxRoomQueries is refused; a replacement never is.
func (s *state) applyPutQuery(c *statev1.PutQuery, now int64, index uint64) error {
	q := c.GetQuery()
	q.CreatedUnixMs, q.RaftIndex = now, index
	if r := s.rooms[c.GetRoom()]; r != nil {
		if i, ok := queryIndex(r, q.GetName()); ok {
			r.Queries[i] = q
			return nil
		}
		if len(r.GetQueries()) >= MaxRoomQueries {
			return rejectf("room %q already has %d registered queries, the limit", c.GetRoom(), MaxRoomQueries)
		}
	}
	r := s.ensureRoom(c.GetRoom(), now)
	i, _ := queryIndex(r, q.GetName())
	r.Queries = slices.Insert(r.Queries, i, q)
	return nil
}

// queryIndex finds the query name in a room's queries, sorted by name.
func queryIndex(r *statev1.Room, name string) (int, bool) {
	return slices.BinarySearchFunc(r.GetQueries(), name, func(q *statev1.RegisteredQuery, name string) int {
		return strings.Compare(q.GetName(), name)
	})
}
