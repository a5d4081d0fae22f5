package controlplane

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// Bounds of the history commands. One answer stays under the 4 MiB a gRPC
// client receives by default (and a WebSocket frame of it, base64 and
// all, near that); packs sent in are bounded by the node count before
// their nodes are decoded.
const (
	maxPackNodes       = 10_000
	defaultExportLimit = 1_000
	maxAnswerBytes     = 3 << 20
	defaultReplayLimit = 100
	maxReplayLimit     = 1_000
	defaultDiffLimit   = 1_000
	maxDiffLimit       = 10_000
	maxKnownIDs        = 10_000
)

// historyCommand reports the commands that act on a room's stored history.
// Room history is not replicated through Raft (invariant 3): each node
// holds its own copy, so these run on the node that was called and are
// never forwarded to the leader (route.go's nodeLocal). Projections are
// built from history and cached per node, so building, reading and
// dropping one belong here too. projection.list does not: it answers the
// registered queries, which are replicated state, so it is read on the
// leader like every read, and the node called adds its own build state
// (an overlay).
func historyCommand(name string) bool {
	switch name {
	case "archive.describe", "archive.validate", "archive.import", "archive.export",
		"graph.get-frontier", "graph.get-causal-parents", "graph.compute-sync-diff",
		"replay.read-range",
		"projection.read", "projection.build", "projection.invalidate":
		return true
	}
	return false
}

// withHistory runs fn on the room's history on this node, holding the
// room loaded meanwhile.
func (s *Server) withHistory(ctx context.Context, command, room string, fn func(history.Store) error) error {
	if s.dataPlane == nil {
		return status.Errorf(codes.FailedPrecondition, "%s: no room store on this node", command)
	}
	st, release, err := s.dataPlane.OpenRoom(room)
	if err != nil {
		return s.dataPlaneError(ctx, command, room, err)
	}
	defer release()
	return fn(st)
}

// dataPlaneError maps a failure of the local data plane: a status it
// chose passes through, the context's end keeps its code, anything else
// is logged and hidden.
func (s *Server) dataPlaneError(ctx context.Context, command, room string, err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", command)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", command)
	}
	s.logger.ErrorContext(ctx, "room history operation failed", "command", command, "room", room, "error", err)
	return internalError()
}

// decodePack reads the pack field of a request: one encoded
// nodalmerge.sync.v1.Pack. The nodes are counted on the wire first, so an
// oversized pack is refused before its nodes are allocated. Per-node
// problems are the validator's to report, node by node.
func decodePack(command string, b []byte) ([]*syncv1.Node, error) {
	n, err := history.CountPackNodes(b)
	if err != nil {
		return nil, invalidArg(command, "pack is not an encoded nodalmerge.sync.v1.Pack (JSON: its base64)")
	}
	if n > maxPackNodes {
		return nil, invalidArg(command, "pack holds %d nodes; send at most %d per call", n, maxPackNodes)
	}
	var p syncv1.Pack
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, invalidArg(command, "pack is not an encoded nodalmerge.sync.v1.Pack (JSON: its base64)")
	}
	return p.GetNodes(), nil
}

// emptyLookup is a history holding nothing: validating against it checks a
// pack on its own, every parent inside the pack.
type emptyLookup struct{}

func (emptyLookup) Has(history.ID) bool { return false }
func (emptyLookup) MaxLamport() uint64  { return 0 }

// firstProblem answers the first refused node of a validation, by pack
// position.
func firstProblem(res *history.Result) (index int, v history.Verdict, ok bool) {
	for i, v := range res.Verdicts {
		if v.Reason != "" {
			return i, v, true
		}
	}
	return 0, history.Verdict{}, false
}

// decoded is a stored node with its transaction read.
type decoded struct {
	node *syncv1.Node
	id   history.ID
	tx   *syncv1.Transaction
}

// decodeStored decodes a stored node's transaction. Stored nodes passed
// the ingest checks, so a failure means a damaged store.
func decodeStored(n *syncv1.Node) (decoded, error) {
	tx := new(syncv1.Transaction)
	if err := proto.Unmarshal(n.GetTransactionBytes(), tx); err != nil {
		return decoded{}, fmt.Errorf("controlplane: stored node %s does not decode: %w", history.NodeID(n), err)
	}
	return decoded{node: n, id: history.NodeID(n), tx: tx}, nil
}

// parentStrings answers a transaction's parent ids in hex, as listed.
func parentStrings(tx *syncv1.Transaction) []string {
	out := make([]string, 0, len(tx.GetParents()))
	for _, p := range tx.GetParents() {
		out = append(out, hex.EncodeToString(p))
	}
	return out
}

// summarize answers the frontier (sorted) and the highest Lamport of a
// closed set of nodes, such as an export.
func summarize(nodes []decoded) (frontier []history.ID, maxLamport uint64) {
	followed := make(map[history.ID]struct{}, len(nodes))
	for _, d := range nodes {
		maxLamport = max(maxLamport, d.tx.GetLamport())
		for _, p := range d.tx.GetParents() {
			if len(p) == history.IDSize {
				followed[history.ID(p)] = struct{}{}
			}
		}
	}
	for _, d := range nodes {
		if _, ok := followed[d.id]; !ok {
			frontier = append(frontier, d.id)
		}
	}
	history.SortIDs(frontier)
	return frontier, maxLamport
}

// publishRejection answers the data plane's reason when Publish refused
// nodes (an error that wraps nothing, see DataPlane.Publish), without its
// "dataplane: publish to <room>: " prefix.
func publishRejection(err error) (string, bool) {
	if err == nil || errors.Unwrap(err) != nil {
		return "", false
	}
	if _, ok := status.FromError(err); ok {
		return "", false
	}
	msg := err.Error()
	if i := strings.Index(msg, " rejected"); i >= 0 {
		if j := strings.LastIndex(msg[:i], ": "); j >= 0 {
			return msg[j+2:], true
		}
	}
	return msg, true
}
