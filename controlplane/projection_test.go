package controlplane

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// Op builders for signed test nodes.
func setOp(path, value string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte(value)}}}
}

func deleteOp(path string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Delete{Delete: &syncv1.MapDelete{}}}
}

func blobOp(path, data, mediaType string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_SetBlob{SetBlob: &syncv1.SetBlob{Data: []byte(data), MediaType: mediaType}}}
}

func textOp(path string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Text{Text: &syncv1.OpaqueOp{Data: []byte("t")}}}
}

// write signs a node of a at lamport with ops, following parents.
func (a author) write(t testing.TB, lamport uint64, ops []*syncv1.Op, parents ...history.ID) (*syncv1.Node, history.ID) {
	t.Helper()
	tx := &syncv1.Transaction{Lamport: lamport, WallMs: uint64(time.Now().UnixMilli()), Ops: ops}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(a.priv, tx)
	if err != nil {
		t.Fatal(err)
	}
	return n, id
}

func (a author) pub() ed25519.PublicKey { return a.priv.Public().(ed25519.PublicKey) }
func (a author) hex() string            { return hex.EncodeToString(a.pub()) }

// lwwHistory is a small room history exercising every resolution rule:
// a later write wins, a delete at a later Lamport removes the path, two
// concurrent writes at one Lamport resolve by author, one node writing a
// path twice keeps its first op, blobs are values, text ops and paths
// outside the pattern do not count.
type lwwHistory struct {
	a, b       author
	nodes      []*syncv1.Node // parents first
	ids        []history.ID
	concWinner author // the winner of world/p/1 at Lamport 2
	concValue  string
	concNode   history.ID
}

func newLWWHistory(t *testing.T) lwwHistory {
	t.Helper()
	h := lwwHistory{a: newAuthor(t), b: newAuthor(t)}
	add := func(n *syncv1.Node, id history.ID) history.ID {
		h.nodes, h.ids = append(h.nodes, n), append(h.ids, id)
		return id
	}
	n1 := add(h.a.write(t, 1, []*syncv1.Op{setOp("world/p/1", `"a1"`), setOp("world/p/2", `"a2"`), setOp("intent/x", `"i"`)}))
	n2 := add(h.b.write(t, 2, []*syncv1.Op{setOp("world/p/1", `"b1"`), deleteOp("world/p/2"), blobOp("world/blob", "PNG", "image/png")}, n1))
	n3 := add(h.a.write(t, 2, []*syncv1.Op{setOp("world/p/1", `"a-conc"`)}, n1))
	add(h.a.write(t, 3, []*syncv1.Op{setOp("world/p/3", `"x"`), setOp("world/p/4", `"first"`), setOp("world/p/4", `"second"`), textOp("world/text")}, n2, n3))
	h.concWinner, h.concValue, h.concNode = h.a, `"a-conc"`, n3
	if bytes.Compare(h.b.pub(), h.a.pub()) > 0 {
		h.concWinner, h.concValue, h.concNode = h.b, `"b1"`, n2
	}
	return h
}

func queryClient(t *testing.T, e *env) (adminv1.QueryServiceClient, adminv1.ArchiveServiceClient) {
	t.Helper()
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	return adminv1.NewQueryServiceClient(conn), adminv1.NewArchiveServiceClient(conn)
}

type wantEntry struct {
	path, value string
	lamport     uint64
	author      author
	node        history.ID
	blob        bool
	mediaType   string
}

func checkEntries(t *testing.T, got []*adminv1.ProjectionEntry, want []wantEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.GetPath() != w.path || string(g.GetValue()) != w.value || g.GetLamport() != w.lamport || g.GetAuthor() != w.author.hex() ||
			g.GetNodeId() != w.node.String() || g.GetBlob() != w.blob || g.GetMediaType() != w.mediaType {
			t.Errorf("entry %d = %v, want %+v (author %s, node %s)", i, g, w, w.author.hex(), w.node)
		}
	}
}

// TestProjectionsOverRealHistory runs query.register and projection.* over
// real gRPC against a real data plane holding real signed history:
// last-writer-wins by (lamport, author, id), deletes, blobs, paging,
// staleness after new history and after re-registration, invalidation,
// and the refusals with their exact messages.
func TestProjectionsOverRealHistory(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	query, archive := queryClient(t, e)
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("query.read", "query.admin", "archive.admin")))
	h := newLWWHistory(t)
	if _, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, h.nodes...)}); err != nil {
		t.Fatalf("import: %v", err)
	}

	// Register: one Raft command carrying the definition and the actor.
	reg, err := query.RegisterQuery(ctx, &adminv1.RegisterQueryRequest{Room: "r1", Name: "world", PathGlob: "world/**", Description: "the world"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	applied := e.cluster.takeApplied()
	if len(applied) != 1 || reg.GetRaftIndex() != e.cluster.index {
		t.Fatalf("register applied %v at %d, answered %d", applied, e.cluster.index, reg.GetRaftIndex())
	}
	pq := applied[0].GetPutQuery()
	want := &statev1.PutQuery{Room: "r1", Query: &statev1.RegisteredQuery{Name: "world", PathGlob: "world/**", Description: "the world", Actor: "alice/tok-1"}}
	if !proto.Equal(pq, want) || applied[0].GetProposedUnixMs() != e.now.UnixMilli() {
		t.Fatalf("proposed %v, want %v", applied[0], want)
	}
	for _, tc := range []struct {
		req *adminv1.RegisterQueryRequest
		msg string
	}{
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "a b", PathGlob: "**"},
			"query.register: name: a query name is 1 to 64 characters from A-Z a-z 0-9 and _ . -, starting with a letter or digit"},
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "q"}, `query.register: path_glob is required: the key paths the query selects, e.g. "world/**"`},
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "q", PathGlob: "world//x"}, "query.register: path_glob: invalid pattern: segment 2 is empty (no leading, trailing or doubled '/')"},
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "q", PathGlob: strings.Repeat("a", 257)}, "query.register: path_glob is longer than 256 bytes"},
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "q", PathGlob: "**", Query: "select"}, "query.register: query is not supported: put the key pattern in path_glob"},
		{&adminv1.RegisterQueryRequest{Room: "r1", Name: "q", PathGlob: "**", Description: "a\tb"}, "query.register: description must be at most 256 bytes of printable text"},
	} {
		if _, err := query.RegisterQuery(ctx, tc.req); !hasStatus(err, codes.InvalidArgument, tc.msg) {
			t.Errorf("register %v = %v, want %q", tc.req, err, tc.msg)
		}
	}
	if got := e.cluster.takeApplied(); len(got) != 0 {
		t.Fatalf("refused registrations proposed %v", got)
	}

	list, err := query.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "r1"})
	if err != nil || !slices.Equal(list.GetNames(), []string{"world"}) || len(list.GetProjections()) != 1 || list.GetNodeId() != "n1" || list.GetRoom() != "r1" {
		t.Fatalf("list = %v, %v", list, err)
	}
	if info := list.GetProjections()[0]; info.GetBuilt() || info.GetPathGlob() != "world/**" || info.GetDescription() != "the world" ||
		info.GetRegisteredBy() != "alice/tok-1" || info.GetRaftIndex() != reg.GetRaftIndex() || !info.GetRegisteredAt().AsTime().Equal(e.now) {
		t.Fatalf("list before a build = %v", info)
	}
	if _, err := query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world"}); !hasStatus(err, codes.FailedPrecondition,
		"projection.read: projection world of room r1 is not built on this node; run projection.build") {
		t.Fatalf("read before build = %v", err)
	}
	if _, err := query.BuildProjection(ctx, &adminv1.BuildProjectionRequest{Room: "r1", Name: "nope"}); !hasStatus(err, codes.NotFound,
		"projection.build: query nope is not registered in room r1 on this node (right after query.register, pass its raft_index as min_raft_index)") {
		t.Fatalf("build unknown = %v", err)
	}

	// Build and read.
	build, err := query.BuildProjection(ctx, &adminv1.BuildProjectionRequest{Room: "r1", Name: "world", MinRaftIndex: reg.GetRaftIndex()})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	last := h.ids[3]
	if build.GetEntries() != 4 || build.GetLamport() != 3 || build.GetNodes() != 4 || !slices.Equal(build.GetFrontier(), []string{last.String()}) ||
		build.GetRoot() != history.Root([]history.ID{last}) || build.GetNodeId() != "n1" || !build.GetBuiltAt().AsTime().Equal(e.now) {
		t.Fatalf("build = %v", build)
	}
	all := []wantEntry{
		{path: "world/blob", value: "PNG", lamport: 2, author: h.b, node: h.ids[1], blob: true, mediaType: "image/png"},
		{path: "world/p/1", value: h.concValue, lamport: 2, author: h.concWinner, node: h.concNode},
		{path: "world/p/3", value: `"x"`, lamport: 3, author: h.a, node: last},
		{path: "world/p/4", value: `"first"`, lamport: 3, author: h.a, node: last},
	}
	read, err := query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world"})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	checkEntries(t, read.GetEntries(), all)
	if read.GetStale() || read.GetNextPath() != "" || read.GetTotalEntries() != 4 || read.GetLamport() != 3 || read.GetPathGlob() != "world/**" ||
		read.GetRoot() != build.GetRoot() || read.GetNodeId() != "n1" || read.GetName() != "world" {
		t.Fatalf("read = %v", read)
	}

	// Pages: limit and from_path = next_path; a prefix.
	page, err := query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world", Limit: 3})
	if err != nil || len(page.GetEntries()) != 3 || page.GetNextPath() != "world/p/4" {
		t.Fatalf("first page = %v, %v", page, err)
	}
	page, err = query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world", Limit: 3, FromPath: page.GetNextPath()})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, page.GetEntries(), all[3:])
	if page.GetNextPath() != "" {
		t.Fatalf("last page next_path %q", page.GetNextPath())
	}
	page, err = query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world", PathPrefix: "world/p/", Limit: 1, FromPath: "world/p/2"})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, page.GetEntries(), all[2:3])
	if page.GetNextPath() != "world/p/4" {
		t.Fatalf("prefix page next_path %q", page.GetNextPath())
	}
	for _, tc := range []struct {
		req *adminv1.ReadProjectionRequest
		msg string
	}{
		{&adminv1.ReadProjectionRequest{Room: "r1", Name: "world", Limit: 10_001}, "projection.read: limit 10001 is over 10000"},
		{&adminv1.ReadProjectionRequest{Room: "r1", Name: "world", PathPrefix: strings.Repeat("p", 4097)}, "projection.read: path_prefix and from_path must be at most 4096 bytes"},
		{&adminv1.ReadProjectionRequest{Room: "r1", Name: ""}, "projection.read: name: " + "a query name is 1 to 64 characters from A-Z a-z 0-9 and _ . -, starting with a letter or digit"},
	} {
		if _, err := query.ReadProjection(ctx, tc.req); !hasStatus(err, codes.InvalidArgument, tc.msg) {
			t.Errorf("read %v = %v, want %q", tc.req, err, tc.msg)
		}
	}
	list, err = query.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "r1"})
	if info := list.GetProjections()[0]; err != nil || !info.GetBuilt() || info.GetEntries() != 4 || info.GetStale() || info.GetLamport() != 3 || !info.GetBuiltAt().AsTime().Equal(e.now) {
		t.Fatalf("list after build = %v, %v", list, err)
	}

	// New history: the build is stale until rebuilt.
	late, lateID := h.b.write(t, 4, []*syncv1.Op{setOp("world/p/1", `"late"`)}, last)
	if _, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, late)}); err != nil {
		t.Fatal(err)
	}
	read, err = query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world", PathPrefix: "world/p/1"})
	if err != nil || !read.GetStale() || string(read.GetEntries()[0].GetValue()) != h.concValue {
		t.Fatalf("read after new history = %v, %v; want the old value, stale", read, err)
	}
	if list, err = query.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "r1"}); err != nil || !list.GetProjections()[0].GetStale() {
		t.Fatalf("list after new history = %v, %v", list, err)
	}
	if _, err := query.BuildProjection(ctx, &adminv1.BuildProjectionRequest{Room: "r1", Name: "world"}); err != nil {
		t.Fatal(err)
	}
	read, err = query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world", PathPrefix: "world/p/1"})
	if err != nil || read.GetStale() {
		t.Fatalf("read after rebuild = %v, %v", read, err)
	}
	checkEntries(t, read.GetEntries(), []wantEntry{{path: "world/p/1", value: `"late"`, lamport: 4, author: h.b, node: lateID}})

	// Registering the name again replaces the pattern: stale until rebuilt.
	if _, err := query.RegisterQuery(ctx, &adminv1.RegisterQueryRequest{Room: "r1", Name: "world", PathGlob: "world/p/*"}); err != nil {
		t.Fatal(err)
	}
	if read, err = query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world"}); err != nil || !read.GetStale() || read.GetTotalEntries() != 4 {
		t.Fatalf("read after re-registration = %v, %v", read, err)
	}
	if build, err = query.BuildProjection(ctx, &adminv1.BuildProjectionRequest{Room: "r1", Name: "world"}); err != nil || build.GetEntries() != 3 {
		t.Fatalf("rebuild with the new pattern = %v, %v", build, err)
	}

	// Invalidate: idempotent, and the read needs a build again.
	for i, wantDropped := range []bool{true, false} {
		inv, err := query.InvalidateProjection(ctx, &adminv1.InvalidateProjectionRequest{Room: "r1", Name: "world"})
		if err != nil || inv.GetDropped() != wantDropped {
			t.Fatalf("invalidate %d = %v, %v", i, inv, err)
		}
	}
	if _, err := query.ReadProjection(ctx, &adminv1.ReadProjectionRequest{Room: "r1", Name: "world"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("read after invalidate = %v", err)
	}
	if list, err = query.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "r1"}); err != nil || list.GetProjections()[0].GetBuilt() {
		t.Fatalf("list after invalidate = %v, %v", list, err)
	}
	// A room without queries lists none (and is not an error).
	if list, err = query.ListProjections(ctx, &adminv1.ListProjectionsRequest{Room: "empty"}); err != nil || len(list.GetNames()) != 0 {
		t.Fatalf("list of a room without queries = %v, %v", list, err)
	}
}

// TestProjectionsOverWebSocket: the WebSocket door builds and reads the
// session's room; values travel as base64, the author as hex.
func TestProjectionsOverWebSocket(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	disp := NewDispatcher(e.srv)
	h := newLWWHistory(t)
	if _, err := dp.Publish(callCtx(t), "lobby", h.nodes); err != nil {
		t.Fatal(err)
	}
	call := func(cmd, payload string, caps ...string) map[string]any {
		return wsFrame(t, disp.Call(callCtx(t), WSCall{Room: "lobby", Command: cmd, Payload: []byte(payload), Pubkey: strings.Repeat("ab", 32), Caps: caps}))
	}
	f := call("query.register", `{"room":"elsewhere","name":"blobs","path_glob":"world/blob"}`, "query.admin")
	if f["type"] != "query.register-result" || f["raft_index"] == nil {
		t.Fatalf("register frame = %v", f)
	}
	if r, ok := e.cluster.Room("lobby"); !ok || len(r.GetQueries()) != 1 || r.GetQueries()[0].GetActor() != strings.Repeat("ab", 32) {
		t.Fatalf("registered in lobby by the session's key: %v", r)
	}
	if f = call("projection.build", `{"name":"blobs"}`, "query.admin"); f["type"] != "projection.build-result" || f["entries"] != "1" {
		t.Fatalf("build frame = %v", f)
	}
	f = call("projection.read", `{"name":"blobs"}`, "query.read")
	entries, _ := f["entries"].([]any)
	if f["type"] != "projection.read-result" || len(entries) != 1 {
		t.Fatalf("read frame = %v", f)
	}
	entry := entries[0].(map[string]any)
	if entry["path"] != "world/blob" || entry["value"] != base64.StdEncoding.EncodeToString([]byte("PNG")) ||
		entry["author"] != h.b.hex() || entry["blob"] != true || entry["media_type"] != "image/png" {
		t.Fatalf("read entry = %v", entry)
	}
	if f = call("projection.read", `{"name":"blobs"}`, "query.admin"); f["msg"] != "reject.control_plane_forbidden: command=projection.read requires=query.read" {
		t.Fatalf("read without query.read = %v", f)
	}
}
