package controlplane

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// author is a real Ed25519 signer of history nodes.
type author struct{ priv ed25519.PrivateKey }

func newAuthor(t testing.TB) author {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return author{priv: priv}
}

// node signs a transaction at lamport following parents, writing path.
func (a author) node(t testing.TB, lamport uint64, path string, parents ...history.ID) (*syncv1.Node, history.ID) {
	t.Helper()
	tx := &syncv1.Transaction{
		Lamport: lamport,
		WallMs:  uint64(time.Now().UnixMilli()),
		Ops:     []*syncv1.Op{{Path: path, Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte(`"v"`)}}}},
	}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(a.priv, tx)
	if err != nil {
		t.Fatal(err)
	}
	return n, id
}

// diamond is root → (left, right) → merge, by two authors.
type diamond struct {
	nodes                   []*syncv1.Node // parents first
	root, left, right, merg history.ID
}

func newDiamond(t testing.TB) diamond {
	t.Helper()
	a, b := newAuthor(t), newAuthor(t)
	var d diamond
	var root, left, right, merge *syncv1.Node
	root, d.root = a.node(t, 1, "world/root")
	left, d.left = a.node(t, 2, "world/left", d.root)
	right, d.right = b.node(t, 2, "world/right", d.root)
	merge, d.merg = b.node(t, 3, "world/merge", d.left, d.right)
	d.nodes = []*syncv1.Node{root, left, right, merge}
	return d
}

func packOf(t testing.TB, nodes ...*syncv1.Node) []byte {
	t.Helper()
	b, err := proto.Marshal(&syncv1.Pack{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// denyPaths is a write policy refusing every path under "secret/".
type denyPaths struct{}

func (denyPaths) AllowWrite(_ string, _ ed25519.PublicKey, _ uint64, path string) bool {
	return !strings.HasPrefix(path, "secret/")
}

// newRealDataPlane is a real data plane (in-memory rooms) shut down at
// the end of the test.
func newRealDataPlane(t *testing.T) *dataplane.Server {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := dataplane.NewServer(dataplane.Config{ServerKey: key, WritePolicy: denyPaths{}})
	if err != nil {
		t.Fatalf("dataplane.NewServer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := dp.Shutdown(ctx); err != nil {
			t.Errorf("data plane shutdown: %v", err)
		}
	})
	return dp
}

// historyClients dials the env as an operator holding the history
// capabilities.
func historyClients(t *testing.T, e *env) (adminv1.ArchiveServiceClient, adminv1.QueryServiceClient, context.Context) {
	t.Helper()
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("archive.read", "archive.admin", "query.read", "query.admin")))
	return adminv1.NewArchiveServiceClient(conn), adminv1.NewQueryServiceClient(conn), ctx
}

// TestArchiveAndGraphOverRealHistory runs the archive and graph commands
// through real gRPC against a real data plane holding real signed nodes.
func TestArchiveAndGraphOverRealHistory(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	archive, query, ctx := historyClients(t, e)
	d := newDiamond(t)

	desc, err := archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"})
	if err != nil {
		t.Fatalf("describe empty room: %v", err)
	}
	if desc.GetNodes() != 0 || desc.GetLive() || len(desc.GetFrontier()) != 0 || desc.GetRoot() != history.Root(nil) {
		t.Fatalf("empty room = %v", desc)
	}

	// Import: the diamond, out of order (the pack is resolved as a whole).
	shuffled := []*syncv1.Node{d.nodes[3], d.nodes[1], d.nodes[0], d.nodes[2]}
	imp, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, shuffled...)})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if imp.GetNodes() != 4 || imp.GetAccepted() != 4 || imp.GetStored() != 4 || imp.GetMaxLamport() != 3 {
		t.Fatalf("import = %v", imp)
	}
	// Again: every node is a duplicate, accepted idempotently.
	if imp, err = archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes...)}); err != nil || imp.GetAccepted() != 4 || imp.GetStored() != 4 {
		t.Fatalf("re-import = %v, %v", imp, err)
	}

	desc, err = archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	wantFrontier := []string{d.merg.String()}
	if desc.GetNodes() != 4 || desc.GetMaxLamport() != 3 || !slices.Equal(desc.GetFrontier(), wantFrontier) ||
		desc.GetRoot() != history.Root([]history.ID{d.merg}) || !desc.GetLive() {
		t.Fatalf("describe = %v", desc)
	}

	// Export: the whole history, parents before children.
	exp, err := archive.ExportArchive(ctx, &adminv1.ExportArchiveRequest{Room: "r1"})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if exp.GetNodes() != 4 || exp.GetMaxLamport() != 3 || !slices.Equal(exp.GetFrontier(), wantFrontier) {
		t.Fatalf("export = nodes %d max %d frontier %v", exp.GetNodes(), exp.GetMaxLamport(), exp.GetFrontier())
	}
	var pack syncv1.Pack
	if err := proto.Unmarshal(exp.GetPack(), &pack); err != nil {
		t.Fatalf("exported pack: %v", err)
	}
	pos := map[history.ID]int{}
	for i, n := range pack.GetNodes() {
		pos[history.NodeID(n)] = i
	}
	if len(pos) != 4 || pos[d.root] > pos[d.left] || pos[d.root] > pos[d.right] || pos[d.left] > pos[d.merg] || pos[d.right] > pos[d.merg] {
		t.Fatalf("export order %v is not parents first", pos)
	}
	if _, err := archive.ExportArchive(ctx, &adminv1.ExportArchiveRequest{Room: "r1", Limit: 3}); !hasStatus(err, codes.FailedPrecondition,
		"archive.export: room r1 holds 4 nodes, more than limit 3: raise limit (at most 10000) or read it in pages with replay.read-range") {
		t.Fatalf("export over limit = %v", err)
	}

	// The export validates on its own and imports elsewhere to the same
	// history (same root).
	val, err := archive.ValidateArchive(ctx, &adminv1.ValidateArchiveRequest{Room: "r2", Pack: exp.GetPack()})
	if err != nil || val.GetNodes() != 4 || val.GetValid() != 4 || val.GetInvalid() != 0 || val.GetFirstProblem() != nil {
		t.Fatalf("validate export = %v, %v", val, err)
	}
	if imp, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r2", Pack: exp.GetPack()}); err != nil || imp.GetStored() != 4 {
		t.Fatalf("import export into r2 = %v, %v", imp, err)
	}
	fr, err := query.GetFrontier(ctx, &adminv1.GetFrontierRequest{Room: "r2"})
	if err != nil || fr.GetRoot() != desc.GetRoot() || fr.GetNodes() != 4 || fr.GetMaxLamport() != 3 || !slices.Equal(fr.GetFrontier(), wantFrontier) {
		t.Fatalf("frontier of r2 = %v, %v; want root %s", fr, err, desc.GetRoot())
	}

	// Causal parents, as the node lists them.
	cp, err := query.GetCausalParents(ctx, &adminv1.GetCausalParentsRequest{Room: "r1", NodeId: d.merg.String()})
	if err != nil || cp.GetLamport() != 3 || !slices.Equal(cp.GetParents(), []string{d.left.String(), d.right.String()}) {
		t.Fatalf("causal parents = %v, %v", cp, err)
	}
	if cp, err = query.GetCausalParents(ctx, &adminv1.GetCausalParentsRequest{Room: "r1", NodeId: strings.ToUpper(d.root.String())}); err != nil || len(cp.GetParents()) != 0 || cp.GetNodeId() != d.root.String() {
		t.Fatalf("causal parents of the root = %v, %v", cp, err)
	}
	unknown := history.ID(sha256.Sum256([]byte("not stored")))
	if _, err := query.GetCausalParents(ctx, &adminv1.GetCausalParentsRequest{Room: "r1", NodeId: unknown.String()}); !hasStatus(err, codes.NotFound,
		"graph.get-causal-parents: node "+unknown.String()+" is not stored in room r1 on this node") {
		t.Fatalf("unknown node = %v", err)
	}
	if _, err := query.GetCausalParents(ctx, &adminv1.GetCausalParentsRequest{Room: "r1", NodeId: "xyz"}); !hasStatus(err, codes.InvalidArgument,
		"graph.get-causal-parents: node_id must be a node id: 64 hex characters") {
		t.Fatalf("bad node id = %v", err)
	}

	// Sync diff: a holder of left lacks right and merge, parents first.
	diff, err := query.ComputeSyncDiff(ctx, &adminv1.ComputeSyncDiffRequest{Room: "r1", Known: []string{d.left.String(), unknown.String()}})
	if err != nil || diff.GetTotal() != 2 || !slices.Equal(diff.GetMissing(), []string{d.right.String(), d.merg.String()}) {
		t.Fatalf("diff = %v, %v", diff, err)
	}
	if diff, err = query.ComputeSyncDiff(ctx, &adminv1.ComputeSyncDiffRequest{Room: "r1", Limit: 1}); err != nil || diff.GetTotal() != 4 || !slices.Equal(diff.GetMissing(), []string{d.root.String()}) {
		t.Fatalf("diff from nothing, limit 1 = %v, %v", diff, err)
	}
	if diff, err = query.ComputeSyncDiff(ctx, &adminv1.ComputeSyncDiffRequest{Room: "r1", Known: wantFrontier}); err != nil || diff.GetTotal() != 0 || len(diff.GetMissing()) != 0 {
		t.Fatalf("diff from the frontier = %v, %v", diff, err)
	}
	if _, err := query.ComputeSyncDiff(ctx, &adminv1.ComputeSyncDiffRequest{Room: "r1", Known: []string{d.root.String(), "nope"}}); !hasStatus(err, codes.InvalidArgument,
		"graph.compute-sync-diff: known entry 1 must be a node id: 64 hex characters") {
		t.Fatalf("bad known = %v", err)
	}
}

// TestReplayReadRangePages reads a Lamport range a page at a time, in
// (lamport, id) order, resuming with after_id.
func TestReplayReadRangePages(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	archive, query, ctx := historyClients(t, e)
	d := newDiamond(t)
	if _, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes...)}); err != nil {
		t.Fatal(err)
	}
	two := []history.ID{d.left, d.right}
	history.SortIDs(two)

	all, err := query.ReadReplayRange(ctx, &adminv1.ReadReplayRangeRequest{Room: "r1"})
	if err != nil || all.GetMore() || len(all.GetNodes()) != 4 {
		t.Fatalf("whole range = %v, %v", all, err)
	}
	var got []string
	for _, n := range all.GetNodes() {
		got = append(got, n.GetId())
		// Each answered node is the signed node itself: it re-derives
		// its id and verifies under its author.
		sn := &syncv1.Node{TransactionBytes: n.GetTransactionBytes(), Signature: n.GetSignature()}
		id := history.NodeID(sn)
		pub, _ := decodePubkey(n.GetAuthor())
		if id.String() != n.GetId() || !ed25519.Verify(pub, id[:], n.GetSignature()) {
			t.Fatalf("node %s does not verify as answered", n.GetId())
		}
	}
	if want := []string{d.root.String(), two[0].String(), two[1].String(), d.merg.String()}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}

	to := uint64(2)
	page, err := query.ReadReplayRange(ctx, &adminv1.ReadReplayRangeRequest{Room: "r1", FromLamport: 2, ToLamport: &to, Limit: 1})
	if err != nil || !page.GetMore() || len(page.GetNodes()) != 1 || page.GetNodes()[0].GetId() != two[0].String() {
		t.Fatalf("first page = %v, %v", page, err)
	}
	page, err = query.ReadReplayRange(ctx, &adminv1.ReadReplayRangeRequest{Room: "r1", FromLamport: 2, ToLamport: &to, Limit: 1, AfterId: two[0].String()})
	if err != nil || page.GetMore() || len(page.GetNodes()) != 1 || page.GetNodes()[0].GetId() != two[1].String() {
		t.Fatalf("second page = %v, %v", page, err)
	}
	if p := page.GetNodes()[0]; p.GetLamport() != 2 || len(p.GetParents()) != 1 || p.GetParents()[0] != d.root.String() {
		t.Fatalf("second page node = %v", p)
	}
	page, err = query.ReadReplayRange(ctx, &adminv1.ReadReplayRangeRequest{Room: "r1", FromLamport: 2, ToLamport: &to, AfterId: two[1].String()})
	if err != nil || page.GetMore() || len(page.GetNodes()) != 0 {
		t.Fatalf("past the end = %v, %v", page, err)
	}

	for _, tc := range []struct {
		req  *adminv1.ReadReplayRangeRequest
		code codes.Code
		msg  string
	}{
		{&adminv1.ReadReplayRangeRequest{Room: "r1", FromLamport: 3, ToLamport: &to}, codes.InvalidArgument, "replay.read-range: from_lamport 3 is above to_lamport 2"},
		{&adminv1.ReadReplayRangeRequest{Room: "r1", Limit: 1001}, codes.InvalidArgument, "replay.read-range: limit 1001 is over 1000"},
		{&adminv1.ReadReplayRangeRequest{Room: "r1", FromLamport: 2, AfterId: d.root.String()}, codes.InvalidArgument,
			"replay.read-range: after_id " + d.root.String() + " has lamport 1, outside [from_lamport, to_lamport]"},
		{&adminv1.ReadReplayRangeRequest{Room: "r1", AfterId: strings.Repeat("0", 64)}, codes.NotFound,
			"replay.read-range: after_id " + strings.Repeat("0", 64) + " is not stored in room r1 on this node"},
	} {
		if _, err := query.ReadReplayRange(ctx, tc.req); !hasStatus(err, tc.code, tc.msg) {
			t.Errorf("ReadReplayRange(%v) = %v; want %v %q", tc.req, err, tc.code, tc.msg)
		}
	}
}

// TestArchiveValidateAndImportRefusals checks that validation names the
// first problem and stores nothing, that import refuses a bad pack whole,
// and that the room's write policy, applied by the data plane's ingest,
// refuses single nodes with its reason.
func TestArchiveValidateAndImportRefusals(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	archive, _, ctx := historyClients(t, e)
	d := newDiamond(t)

	// Without the root, left and right miss their parent, and merge
	// follows them.
	val, err := archive.ValidateArchive(ctx, &adminv1.ValidateArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes[1:]...)})
	if err != nil {
		t.Fatal(err)
	}
	if val.GetNodes() != 3 || val.GetValid() != 0 || val.GetInvalid() != 3 ||
		!proto.Equal(val.GetFirstProblem(), &adminv1.ArchiveProblem{Index: 0, NodeId: d.left.String(), Reason: history.ReasonMissingParent}) {
		t.Fatalf("validate without root = %v", val)
	}
	// A signature from someone else; a repeated node.
	forged := proto.CloneOf(d.nodes[2])
	forged.Signature = ed25519.Sign(newAuthor(t).priv, d.right[:])
	val, err = archive.ValidateArchive(ctx, &adminv1.ValidateArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes[0], d.nodes[0], forged)})
	if err != nil {
		t.Fatal(err)
	}
	if val.GetNodes() != 3 || val.GetValid() != 2 || val.GetDuplicates() != 1 || val.GetInvalid() != 1 ||
		!proto.Equal(val.GetFirstProblem(), &adminv1.ArchiveProblem{Index: 2, NodeId: d.right.String(), Reason: history.ReasonSignature}) {
		t.Fatalf("validate forged = %v", val)
	}
	if _, err := archive.ValidateArchive(ctx, &adminv1.ValidateArchiveRequest{Room: "r1", Pack: []byte{0xff}}); !hasStatus(err, codes.InvalidArgument,
		"archive.validate: pack is not an encoded nodalmerge.sync.v1.Pack (JSON: its base64)") {
		t.Fatalf("garbage pack = %v", err)
	}
	big := packOf(t, slices.Repeat([]*syncv1.Node{{}}, maxPackNodes+1)...)
	if _, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: big}); !hasStatus(err, codes.InvalidArgument,
		"archive.import: pack holds 10001 nodes; send at most 10000 per call") {
		t.Fatalf("oversized pack = %v", err)
	}

	// Import refuses a pack with a forged node whole: nothing stored.
	_, err = archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes[0], d.nodes[1], forged)})
	if !hasStatus(err, codes.InvalidArgument, "archive.import: pack refused, nothing imported: 1 of 3 nodes fail the ingest checks; first: node 2 ("+d.right.String()+"): bad signature") {
		t.Fatalf("import forged = %v", err)
	}
	if desc, err := archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"}); err != nil || desc.GetNodes() != 0 {
		t.Fatalf("after a refused import = %v, %v", desc, err)
	}

	// Parents may already be stored: import the root, then the rest.
	if imp, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes[0])}); err != nil || imp.GetStored() != 1 {
		t.Fatalf("import root = %v, %v", imp, err)
	}
	if imp, err := archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes[1:]...)}); err != nil || imp.GetAccepted() != 3 || imp.GetStored() != 4 {
		t.Fatalf("import the rest = %v, %v", imp, err)
	}

	// The write policy is the data plane's: one node writing secret/ is
	// refused, the other stored.
	a := newAuthor(t)
	ok, _ := a.node(t, 4, "world/fine", d.merg)
	bad, badID := a.node(t, 4, "secret/x", d.merg)
	_, err = archive.ImportArchive(ctx, &adminv1.ImportArchiveRequest{Room: "r1", Pack: packOf(t, ok, bad)})
	if !hasStatus(err, codes.FailedPrecondition, "archive.import: the room refused part of the pack (1 of 2 nodes stored): 1 of 2 nodes rejected (first "+
		badID.String()+": policy denies write to secret/x)") {
		t.Fatalf("import against the policy = %v", err)
	}
	if desc, err := archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"}); err != nil || desc.GetNodes() != 5 {
		t.Fatalf("after the policy refusal = %v, %v", desc, err)
	}
}

// TestHistoryCommandsOverWebSocket runs the history commands through the
// WebSocket door: the session's room is forced, the pack travels as
// base64 (the same text a `pack.nodes` carries), and the answer is one
// result frame.
func TestHistoryCommandsOverWebSocket(t *testing.T) {
	dp := newRealDataPlane(t)
	e := newEnv(t, envOptions{realDataPlane: dp})
	disp := NewDispatcher(e.srv)
	d := newDiamond(t)
	b64, err := history.EncodePack(d.nodes)
	if err != nil {
		t.Fatal(err)
	}
	call := func(cmd, payload string, caps ...string) map[string]any {
		return wsFrame(t, disp.Call(callCtx(t), WSCall{Room: "lobby", Command: cmd, Payload: []byte(payload), Pubkey: strings.Repeat("ab", 32), Caps: caps}))
	}
	// "room" in the payload is ignored: the session's room wins.
	f := call("archive.import", `{"type":"archive.import","id":7,"room":"elsewhere","pack":"`+b64+`"}`, "archive.admin")
	if f["type"] != "archive.import-result" || f["id"] != float64(7) || f["accepted"] != "4" || f["stored"] != "4" {
		t.Fatalf("import frame = %v", f)
	}
	f = call("archive.describe", `{}`, "archive.read")
	if f["type"] != "archive.describe-result" || f["room"] != "lobby" || f["nodes"] != "4" || f["live"] != true {
		t.Fatalf("describe frame = %v", f)
	}
	f = call("archive.export", `{}`, "archive.admin")
	exported, _ := f["pack"].(string)
	pack, err := history.DecodePack(exported, maxPackNodes)
	if err != nil || len(pack.GetNodes()) != 4 {
		t.Fatalf("exported pack %q is not a pack.nodes text: %v", exported, err)
	}
	if _, err := base64.StdEncoding.DecodeString(exported); err != nil {
		t.Fatal(err)
	}
	f = call("graph.get-causal-parents", `{"node_id":"`+d.merg.String()+`"}`, "query.admin")
	if parents, _ := json.Marshal(f["parents"]); f["type"] != "graph.get-causal-parents-result" ||
		string(parents) != `["`+d.left.String()+`","`+d.right.String()+`"]` {
		t.Fatalf("causal parents frame = %v", f)
	}
	f = call("archive.describe", `{}`, "query.admin")
	if f["type"] != "error" || f["msg"] != "reject.control_plane_forbidden: command=archive.describe requires=archive.read" {
		t.Fatalf("describe without archive.read = %v", f)
	}
	e.audit.take()
}

// TestCommandsNotInThisRelease checks that every command without state in
// this release answers UNIMPLEMENTED saying what is missing, to a caller
// holding its capability, over both doors.
func TestCommandsNotInThisRelease(t *testing.T) {
	e := newEnv(t, envOptions{dataPlane: &fakeDataPlane{}})
	reg := e.srv.Registry()
	disp := NewDispatcher(e.srv)
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	want := map[string]string{
		"topology.create-child":       noLineage,
		"topology.describe-lineage":   noLineage,
		"topology.list-children":      noLineage,
		"topology.propose-promotion":  noLineage,
		"topology.validate-promotion": noLineage,
		"topology.apply-promotion":    noLineage,
	}
	for name, what := range want {
		cmd, ok := reg.ByName(name)
		if !ok {
			t.Fatalf("%s is not registered", name)
		}
		msg := name + ": " + what
		req := matrixRequest(t, reg, cmd)
		resp, _ := reg.newResponse(cmd.FullMethod)
		ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims(cmd.Capability)))
		if err := conn.Invoke(ctx, cmd.FullMethod, req, resp); !hasStatus(err, codes.Unimplemented, msg) {
			t.Errorf("%s over gRPC = %v; want Unimplemented %q", name, err, msg)
		}
		f := wsFrame(t, disp.Call(callCtx(t), WSCall{Room: "lobby", Command: name, Payload: []byte(`{}`), Caps: []string{cmd.Capability}}))
		if f["type"] != "error" || f["msg"] != msg {
			t.Errorf("%s over WebSocket = %v; want %q", name, f, msg)
		}
		// The room is still checked first.
		setRoom(req, "bad room")
		if err := conn.Invoke(ctx, cmd.FullMethod, req, resp); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s with a bad room = %v; want InvalidArgument", name, err)
		}
	}
	e.audit.take()
}

// TestHistoryCommandsRunOnTheCalledNode checks the routing: a follower
// answers the history commands from its own rooms, without a read barrier
// and without forwarding (it has no forwarder here, so a forward would
// fail), and a node without a data plane says so.
func TestHistoryCommandsRunOnTheCalledNode(t *testing.T) {
	dp := &fakeDataPlane{}
	e := newEnv(t, envOptions{dataPlane: dp})
	e.cluster.mu.Lock()
	e.cluster.follower = true
	e.cluster.mu.Unlock()
	d := newDiamond(t)
	if _, err := dp.Publish(callCtx(t), "r1", d.nodes); err != nil {
		t.Fatal(err)
	}
	archive, query, ctx := historyClients(t, e)
	desc, err := archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"})
	if err != nil || desc.GetNodes() != 4 {
		t.Fatalf("describe on a follower = %v, %v", desc, err)
	}
	if fr, err := query.GetFrontier(ctx, &adminv1.GetFrontierRequest{Room: "r1"}); err != nil || fr.GetFrontier()[0] != d.merg.String() {
		t.Fatalf("frontier on a follower = %v, %v", fr, err)
	}
	e.cluster.mu.Lock()
	reads := e.cluster.reads
	e.cluster.mu.Unlock()
	if reads != 0 {
		t.Fatalf("history commands took %d read barriers; they are node-local", reads)
	}

	bare := newEnv(t, envOptions{})
	archive, _, ctx = historyClients(t, bare)
	if _, err := archive.DescribeArchive(ctx, &adminv1.DescribeArchiveRequest{Room: "r1"}); !hasStatus(err, codes.FailedPrecondition,
		"archive.describe: no room store on this node") {
		t.Fatalf("describe without a data plane = %v", err)
	}
	// Validation reads no room, so it needs no data plane.
	if val, err := archive.ValidateArchive(ctx, &adminv1.ValidateArchiveRequest{Room: "r1", Pack: packOf(t, d.nodes...)}); err != nil || val.GetValid() != 4 {
		t.Fatalf("validate without a data plane = %v, %v", val, err)
	}
}

// hasStatus reports whether err is the status code with exactly msg.
func hasStatus(err error, code codes.Code, msg string) bool {
	st, ok := status.FromError(err)
	return ok && err != nil && st.Code() == code && st.Message() == msg
}
