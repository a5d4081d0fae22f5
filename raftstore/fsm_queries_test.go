package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func putQueryCmd(room, name, glob string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PutQuery{PutQuery: &statev1.PutQuery{
		Room: room, Query: &statev1.RegisteredQuery{Name: name, PathGlob: glob, Actor: "ops/tok-1"}}}}
}

func queryNames(r *statev1.Room) []string {
	var out []string
	for _, q := range r.GetQueries() {
		out = append(out, q.GetName())
	}
	return out
}

// TestFSMQueries: registration creates the room, stamps time and index,
// keeps queries sorted, replaces by name, and refuses a 65th name but
// never a replacement.
func TestFSMQueries(t *testing.T) {
	x := newFx(t)
	x.ok(t0+5, putQueryCmd("r", "players", "world/player/*"))
	r := x.room("r")
	if r.GetLock() != statev1.LockMode_LOCK_MODE_OPEN || r.GetCreatedUnixMs() != t0+5 {
		t.Fatalf("room created by put_query = %v", r)
	}
	q := r.GetQueries()[0]
	if q.GetName() != "players" || q.GetPathGlob() != "world/player/*" || q.GetCreatedUnixMs() != t0+5 ||
		q.GetRaftIndex() != x.idx || q.GetActor() != "ops/tok-1" {
		t.Fatalf("stored query = %v (index %d)", q, x.idx)
	}

	x.ok(t0+6, putQueryCmd("r", "a-first", "**"))
	x.ok(t0+7, putQueryCmd("r", "zeta.1", "intent/**"))
	if got := queryNames(x.room("r")); strings.Join(got, ",") != "a-first,players,zeta.1" {
		t.Fatalf("queries %v, want sorted by name", got)
	}

	// Re-registering replaces the definition (and its stamps).
	cmd := putQueryCmd("r", "players", "world/**")
	cmd.GetPutQuery().GetQuery().Description = "every world key"
	cmd.GetPutQuery().GetQuery().CreatedUnixMs, cmd.GetPutQuery().GetQuery().RaftIndex = 1, 1 // not the proposer's to set
	x.ok(t0+9, cmd)
	r = x.room("r")
	if len(r.GetQueries()) != 3 {
		t.Fatalf("replace added a query: %v", queryNames(r))
	}
	q = r.GetQueries()[1]
	if q.GetPathGlob() != "world/**" || q.GetDescription() != "every world key" || q.GetCreatedUnixMs() != t0+9 || q.GetRaftIndex() != x.idx {
		t.Fatalf("replaced query = %v (index %d)", q, x.idx)
	}

	// Queries of one room do not leak into another.
	x.ok(t0+10, putQueryCmd("other", "players", "x"))
	if got := queryNames(x.room("r")); len(got) != 3 {
		t.Fatalf("room r queries %v", got)
	}

	// The limit: 64 names per room; a 65th is refused, a replacement at
	// the limit is accepted.
	for i := len(x.room("r").GetQueries()); i < MaxRoomQueries; i++ {
		x.ok(t0+11, putQueryCmd("r", fmt.Sprintf("q%02d", i), "world/*"))
	}
	x.refused(t0+12, putQueryCmd("r", "one-more", "world/*"), ErrRejected,
		`room "r" already has 64 registered queries, the limit`)
	x.ok(t0+13, putQueryCmd("r", "players", "world/player/**"))
	if n := len(x.room("r").GetQueries()); n != MaxRoomQueries {
		t.Fatalf("%d queries after replacing at the limit", n)
	}

	// Everything above survives a snapshot round trip byte for byte.
	snap := snapshotBytes(t, x.f)
	c := newTestFSM()
	if err := c.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, c)) {
		t.Fatal("queries did not round-trip through a snapshot")
	}
}

func TestValidQueryName(t *testing.T) {
	for _, ok := range []string{"a", "Z", "0", "players", "a-b_c.d", strings.Repeat("x", 64)} {
		if !ValidQueryName(ok) {
			t.Errorf("ValidQueryName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "_a", "a b", "a/b", "é", "a\n", strings.Repeat("x", 65), "a*"} {
		if ValidQueryName(bad) {
			t.Errorf("ValidQueryName(%q) = true", bad)
		}
	}
}

// TestFSMPutQueryInvalid: malformed put_query commands are invalid, by
// the proposer's check and by the FSM alike, and change nothing.
func TestFSMPutQueryInvalid(t *testing.T) {
	withDesc := func(d string) *statev1.Command {
		c := putQueryCmd("r", "q", "world/**")
		c.GetPutQuery().GetQuery().Description = d
		return c
	}
	withActor := func(a string) *statev1.Command {
		c := putQueryCmd("r", "q", "world/**")
		c.GetPutQuery().GetQuery().Actor = a
		return c
	}
	cases := []struct {
		name   string
		cmd    *statev1.Command
		reason string
	}{
		{"nil query", &statev1.Command{Kind: &statev1.Command_PutQuery{PutQuery: &statev1.PutQuery{Room: "r"}}}, "missing query"},
		{"bad room", putQueryCmd("a b", "q", "**"), "invalid room name"},
		{"empty name", putQueryCmd("r", "", "**"), QueryNameHelp},
		{"name with slash", putQueryCmd("r", "a/b", "**"), QueryNameHelp},
		{"long name", putQueryCmd("r", strings.Repeat("n", 65), "**"), QueryNameHelp},
		{"empty glob", putQueryCmd("r", "q", ""), "empty pattern"},
		{"glob with empty segment", putQueryCmd("r", "q", "world//x"), "invalid pattern"},
		{"glob with bad double star", putQueryCmd("r", "q", "world/a**"), "'**' must be a whole segment"},
		{"long glob", putQueryCmd("r", "q", strings.Repeat("a", 1025)), "longer than 1024"},
		{"long description", withDesc(strings.Repeat("d", 257)), "description longer than 256"},
		{"control in description", withDesc("a\x00b"), "control characters"},
		{"control in actor", withActor("a\nb"), "control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newFx(t)
			x.refused(t0, tc.cmd, ErrInvalidCommand, tc.reason)
			if err := validateCommand(tc.cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("validateCommand: %v", err)
			}
		})
	}
	t.Run("missing proposed time", func(t *testing.T) {
		x := newFx(t)
		x.refused(0, putQueryCmd("r", "q", "**"), ErrInvalidCommand, "put_query: missing proposed time")
	})
}

// TestFSMRestoreRejectsBadQueries: a snapshot holding queries that
// applying commands could not produce is refused whole.
func TestFSMRestoreRejectsBadQueries(t *testing.T) {
	q := func(name string) *statev1.RegisteredQuery {
		return &statev1.RegisteredQuery{Name: name, PathGlob: "world/**", CreatedUnixMs: t0, RaftIndex: 3}
	}
	many := make([]*statev1.RegisteredQuery, MaxRoomQueries+1)
	for i := range many {
		many[i] = q(fmt.Sprintf("q%03d", i))
	}
	unstamped := q("a")
	unstamped.RaftIndex = 0
	badGlob := q("a")
	badGlob.PathGlob = "a//b"
	room := func(qs ...*statev1.RegisteredQuery) []byte {
		return mustMarshal(t, &statev1.Snapshot{ClusterId: "x", Rooms: []*statev1.Room{{
			Name: "r", Lock: statev1.LockMode_LOCK_MODE_OPEN, Queries: qs}}})
	}
	for name, tc := range map[string]struct {
		data   []byte
		reason string
	}{
		"unsorted":  {room(q("b"), q("a")), "not sorted by name or duplicated"},
		"duplicate": {room(q("a"), q("a")), "not sorted by name or duplicated"},
		"too many":  {room(many...), "65 queries, more than 64"},
		"unstamped": {room(unstamped), "without registration time or index"},
		"bad glob":  {room(badGlob), "invalid pattern"},
		"bad name":  {room(q("-x")), QueryNameHelp},
	} {
		t.Run(name, func(t *testing.T) {
			f := newTestFSM()
			mustApply(t, f, 1, initCmd("keep"))
			before := mustMarshal(t, f.dump())
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Restore = %v, want an error saying %q", err, tc.reason)
			}
			if !bytes.Equal(before, mustMarshal(t, f.dump())) {
				t.Fatal("failed Restore changed state")
			}
		})
	}
	// The good form of the same room restores.
	f := newTestFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(room(q("a"), q("b"))))); err != nil {
		t.Fatalf("valid queries refused: %v", err)
	}
}

// TestStoreQueriesThroughRaft registers queries through a real
// single-node store and reads them back with Room and ViewRoom; the
// index Apply answers is the one stamped on the definition.
func TestStoreQueriesThroughRaft(t *testing.T) {
	s := openNode(t, pkitest.New(t), "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("cluster-q")); err != nil {
		t.Fatal(err)
	}
	idx, err := s.Apply(ctx, putQueryCmd("r", "players", "world/player/*"))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := s.Room("r")
	if !ok || len(r.GetQueries()) != 1 || r.GetQueries()[0].GetRaftIndex() != idx || r.GetQueries()[0].GetCreatedUnixMs() == 0 {
		t.Fatalf("Room(r) = %v, %v; want the query stamped with index %d", r, ok, idx)
	}
	// The copy is the caller's.
	r.GetQueries()[0].PathGlob = "changed"
	var glob string
	s.ViewRoom("r", func(r *statev1.Room) { glob = r.GetQueries()[0].GetPathGlob() })
	if glob != "world/player/*" {
		t.Fatalf("stored glob %q after changing a copy", glob)
	}

	// A refused registration reaches the proposer as ErrInvalidCommand
	// before it takes a log slot.
	before := s.Status().AppliedIndex
	if _, err := s.Apply(ctx, putQueryCmd("r", "bad name", "**")); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("bad name: %v", err)
	}
	if after := s.Status().AppliedIndex; after != before {
		t.Fatalf("an invalid command took a log slot (%d → %d)", before, after)
	}
}
