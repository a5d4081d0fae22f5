package controlplane

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestProjectionsAreNodeLocalOnARealCluster runs the projection commands
// on three real Raft nodes whose rooms hold different histories: the
// definition registered through a follower reaches every node; builds,
// reads and invalidations act on the node called only; projection.list
// through a follower answers the leader's definitions with the
// follower's own build state, never the leader's.
func TestProjectionsAreNodeLocalOnARealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three Raft nodes")
	}
	p := pkitest.New(t)
	n1, n2, n3 := startRealNode(t, p, "n1"), startRealNode(t, p, "n2"), startRealNode(t, p, "n3")
	rc := &realCluster{pki: p, nodes: []*realNode{n1, n2, n3}}
	rc.opKid, rc.opPriv = bootstrapRealLeader(t, n1, time.Now())
	ctx := realCtx(t)
	for i, n := range []*realNode{n2, n3} {
		j, err := adminv1.NewClusterServiceClient(dialAs(t, p, n1, n.id, true)).Join(ctx, &adminv1.JoinRequest{
			NodeId: n.id, RaftAddr: n.store.RaftAddr(), AdminAddr: n.addr,
		})
		if err != nil {
			t.Fatalf("join %s: %v", n.id, err)
		}
		waitAll(t, ctx, j.GetRaftIndex(), rc.nodes[:i+2]...)
	}

	// n1 holds two writes of world/score; n2 only the first; n3 nothing.
	a := newAuthor(t)
	first, firstID := a.write(t, 1, []*syncv1.Op{setOp("world/score", "1"), setOp("world/name", `"a"`)})
	second, secondID := a.write(t, 2, []*syncv1.Op{setOp("world/score", "2")}, firstID)
	if _, err := n1.dp.Publish(ctx, "arena", []*syncv1.Node{first, second}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.dp.Publish(ctx, "arena", []*syncv1.Node{first}); err != nil {
		t.Fatal(err)
	}

	tok := rc.operatorToken(t, "query.read", "query.admin")
	q := func(n *realNode) adminv1.QueryServiceClient {
		return adminv1.NewQueryServiceClient(dialAs(t, p, n, "alice", false))
	}
	q1, q2, q3 := q(n1), q(n2), q(n3)
	opCtx := bearer(ctx, tok)

	reg, err := q3.RegisterQuery(opCtx, &adminv1.RegisterQueryRequest{Room: "arena", Name: "world", PathGlob: "world/*"})
	if err != nil {
		t.Fatalf("register through a follower: %v", err)
	}
	if ev := eventsOf(n3.audit, "query.register"); len(ev) != 1 || ev[0].RaftIndex != reg.GetRaftIndex() || ev[0].Actor != "ops/op-tok" {
		t.Fatalf("n3 register events = %+v", ev)
	}

	// Built on n2 right after registering (min_raft_index) and on n1.
	b2, err := q2.BuildProjection(opCtx, &adminv1.BuildProjectionRequest{Room: "arena", Name: "world", MinRaftIndex: reg.GetRaftIndex()})
	if err != nil || b2.GetEntries() != 2 || b2.GetLamport() != 1 || b2.GetNodeId() != "n2" {
		t.Fatalf("build on n2 = %v, %v", b2, err)
	}
	b1, err := q1.BuildProjection(opCtx, &adminv1.BuildProjectionRequest{Room: "arena", Name: "world"})
	if err != nil || b1.GetEntries() != 2 || b1.GetLamport() != 2 || b1.GetNodeId() != "n1" {
		t.Fatalf("build on n1 = %v, %v", b1, err)
	}
	waitAll(t, ctx, reg.GetRaftIndex(), n1, n2, n3)
	for _, n := range rc.nodes {
		if r, ok := n.store.Room("arena"); !ok || len(r.GetQueries()) != 1 || r.GetQueries()[0].GetRaftIndex() != reg.GetRaftIndex() {
			t.Fatalf("%s: room arena = %v", n.id, r)
		}
	}

	score := func(c adminv1.QueryServiceClient) string {
		t.Helper()
		r, err := c.ReadProjection(opCtx, &adminv1.ReadProjectionRequest{Room: "arena", Name: "world", PathPrefix: "world/score"})
		if err != nil || len(r.GetEntries()) != 1 || r.GetStale() {
			t.Fatalf("read = %v, %v", r, err)
		}
		return string(r.GetEntries()[0].GetValue())
	}
	if s1, s2 := score(q1), score(q2); s1 != "2" || s2 != "1" {
		t.Fatalf("score on n1 %q, on n2 %q: each node answers its own history", s1, s2)
	}
	if _, err := q3.ReadProjection(opCtx, &adminv1.ReadProjectionRequest{Room: "arena", Name: "world"}); !hasStatus(err, codes.FailedPrecondition,
		"projection.read: projection world of room arena is not built on this node; run projection.build") {
		t.Fatalf("read on n3 = %v", err)
	}

	// projection.list: the leader's definitions, the called node's builds.
	check := func(c adminv1.QueryServiceClient, node string, wantBuilt bool, wantEntries uint64, stale bool) {
		t.Helper()
		ctx := opCtx
		if stale {
			ctx = metadata.AppendToOutgoingContext(opCtx, "nodalmerge-consistency", "stale")
		}
		l, err := c.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "arena"})
		if err != nil || !slices.Equal(l.GetNames(), []string{"world"}) || l.GetNodeId() != node || l.GetRoom() != "arena" {
			t.Fatalf("list on %s = %v, %v", node, l, err)
		}
		info := l.GetProjections()[0]
		if info.GetBuilt() != wantBuilt || info.GetEntries() != wantEntries || info.GetStale() || info.GetRaftIndex() != reg.GetRaftIndex() || info.GetPathGlob() != "world/*" {
			t.Fatalf("list on %s: %v; want built %v with %d entries", node, info, wantBuilt, wantEntries)
		}
	}
	check(q1, "n1", true, 2, false)
	check(q2, "n2", true, 2, false)
	check(q3, "n3", false, 0, false) // forwarded to n1, which built: its build must not show
	check(q3, "n3", false, 0, true)  // a stale read answers locally
	check(q2, "n2", true, 2, true)

	// Invalidation drops n2's build only.
	if inv, err := q2.InvalidateProjection(opCtx, &adminv1.InvalidateProjectionRequest{Room: "arena", Name: "world"}); err != nil || !inv.GetDropped() {
		t.Fatalf("invalidate on n2 = %v, %v", inv, err)
	}
	check(q2, "n2", false, 0, false)
	check(q1, "n1", true, 2, false)

	// New history on n1 makes its build stale, seen through n1 only.
	third, _ := a.write(t, 3, []*syncv1.Op{setOp("world/score", "3")}, secondID)
	if _, err := n1.dp.Publish(ctx, "arena", []*syncv1.Node{third}); err != nil {
		t.Fatal(err)
	}
	l, err := q1.ListProjections(opCtx, &adminv1.ListProjectionsRequest{Room: "arena"})
	if err != nil || !l.GetProjections()[0].GetStale() {
		t.Fatalf("list on n1 after new history = %v, %v", l, err)
	}
}
