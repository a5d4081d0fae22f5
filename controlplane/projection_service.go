package controlplane

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// Registered queries and projections (SPEC section 4 query.register,
// projection.*). The definition is replicated (a PutQuery in the room's
// record); a projection is derived from this node's copy of the room's
// history and cached here. See DESIGN.md, "Registered queries and
// projections".
const (
	registerQueryCommand        = "query.register"
	buildProjectionCommand      = "projection.build"
	readProjectionCommand       = "projection.read"
	listProjectionsCommand      = "projection.list"
	invalidateProjectionCommand = "projection.invalidate"

	defaultProjectionLimit = 1_000
	maxProjectionLimit     = 10_000
	// maxProjectionPathArg bounds path_prefix and from_path.
	maxProjectionPathArg = 4096
	// maxAppliedWait bounds how long a build waits for min_raft_index: an
	// index this node never reaches must not hold the call forever.
	maxAppliedWait = 10 * time.Second
)

func (qs *queryService) RegisterQuery(ctx context.Context, req *adminv1.RegisterQueryRequest) (*adminv1.RegisterQueryResponse, error) {
	const command = registerQueryCommand
	room, name := req.GetRoom(), req.GetName()
	if err := checkProjectionRef(command, room, name); err != nil {
		return nil, err
	}
	if req.GetQuery() != "" {
		return nil, invalidArg(command, "query is not supported: put the key pattern in path_glob")
	}
	glob := req.GetPathGlob()
	switch {
	case glob == "":
		return nil, invalidArg(command, `path_glob is required: the key paths the query selects, e.g. "world/**"`)
	case len(glob) > maxGlobBytes:
		return nil, invalidArg(command, "path_glob is longer than %d bytes", maxGlobBytes)
	}
	if _, err := pathglob.Compile(glob); err != nil {
		return nil, invalidArg(command, "path_glob: %v", err)
	}
	if d := req.GetDescription(); len(d) > raftstore.MaxQueryDescriptionLen || !printable(d) {
		return nil, invalidArg(command, "description must be at most %d bytes of printable text", raftstore.MaxQueryDescriptionLen)
	}
	p, _ := PrincipalFrom(ctx)
	idx, err := qs.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_PutQuery{PutQuery: &statev1.PutQuery{
		Room: room,
		Query: &statev1.RegisteredQuery{
			Name:        name,
			PathGlob:    glob,
			Description: req.GetDescription(),
			Actor:       stateActor(p.Actor()),
		},
	}}})
	if err != nil {
		return nil, err
	}
	qs.s.logger.InfoContext(ctx, "query registered", "room", room, "query", name, "path_glob", glob, "index", idx)
	return &adminv1.RegisterQueryResponse{RaftIndex: idx}, nil
}

func (qs *queryService) BuildProjection(ctx context.Context, req *adminv1.BuildProjectionRequest) (*adminv1.BuildProjectionResponse, error) {
	const command = buildProjectionCommand
	room, name := req.GetRoom(), req.GetName()
	if err := checkProjectionRef(command, room, name); err != nil {
		return nil, err
	}
	if idx := req.GetMinRaftIndex(); idx > 0 {
		if err := qs.waitApplied(ctx, command, idx); err != nil {
			return nil, err
		}
	}
	def, ok := qs.definition(room, name)
	if !ok {
		return nil, status.Errorf(codes.NotFound,
			"%s: query %s is not registered in room %s on this node (right after query.register, pass its raft_index as min_raft_index)",
			command, name, room)
	}
	glob, err := pathglob.Compile(def.GetPathGlob())
	if err != nil {
		// The state machine only stores patterns that compile.
		qs.s.logger.ErrorContext(ctx, "stored query does not compile", "room", room, "query", name, "error", err)
		return nil, internalError()
	}
	var p *projection
	err = qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		var err error
		p, err = foldProjection(ctx, st, glob)
		if errors.Is(err, errProjectionTooLarge) {
			return status.Errorf(codes.FailedPrecondition, "%s: projection %s of room %s would hold more than %d MiB on this node; register it with a narrower path_glob",
				command, name, room, maxProjectionBytes>>20)
		}
		if err != nil {
			return qs.s.dataPlaneError(ctx, command, room, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.room, p.name, p.glob, p.queryIndex, p.builtAt = room, name, def.GetPathGlob(), def.GetRaftIndex(), qs.s.now()
	qs.projections.put(p)
	qs.s.logger.InfoContext(ctx, "projection built", "room", room, "query", name, "entries", len(p.entries),
		"nodes", p.nodes, "root", p.root)
	return &adminv1.BuildProjectionResponse{
		Lamport:  p.maxLamport,
		Entries:  uint64(len(p.entries)),
		Frontier: history.Strings(p.frontier),
		Root:     p.root,
		BuiltAt:  timestamppb.New(p.builtAt),
		Nodes:    uint64(p.nodes),
		NodeId:   qs.s.nodeID,
	}, nil
}

func (qs *queryService) ReadProjection(ctx context.Context, req *adminv1.ReadProjectionRequest) (*adminv1.ReadProjectionResponse, error) {
	const command = readProjectionCommand
	room, name := req.GetRoom(), req.GetName()
	if err := checkProjectionRef(command, room, name); err != nil {
		return nil, err
	}
	limit, err := checkLimit(command, req.GetLimit(), defaultProjectionLimit, maxProjectionLimit)
	if err != nil {
		return nil, err
	}
	prefix, from := req.GetPathPrefix(), req.GetFromPath()
	if len(prefix) > maxProjectionPathArg || len(from) > maxProjectionPathArg {
		return nil, invalidArg(command, "path_prefix and from_path must be at most %d bytes", maxProjectionPathArg)
	}
	p, ok := qs.projections.get(projectionKey{room: room, name: name})
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: projection %s of room %s is not built on this node; run projection.build", command, name, room)
	}
	root, err := qs.currentRoot(ctx, command, room)
	if err != nil {
		return nil, err
	}
	def, registered := qs.definition(room, name)
	entries, next := p.page(prefix, from, limit, maxAnswerBytes)
	resp := &adminv1.ReadProjectionResponse{
		Name:         name,
		Lamport:      p.maxLamport,
		Entries:      make([]*adminv1.ProjectionEntry, 0, len(entries)),
		NextPath:     next,
		Stale:        !registered || p.stale(root, def.GetRaftIndex()),
		TotalEntries: uint64(len(p.entries)),
		Frontier:     history.Strings(p.frontier),
		Root:         p.root,
		BuiltAt:      timestamppb.New(p.builtAt),
		PathGlob:     p.glob,
		NodeId:       qs.s.nodeID,
	}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, &adminv1.ProjectionEntry{
			Path:      e.path,
			Value:     e.value,
			Lamport:   e.at.Lamport,
			Author:    hex.EncodeToString(e.at.Author[:]),
			NodeId:    e.at.Node.String(),
			Blob:      e.blob,
			MediaType: e.mediaType,
		})
	}
	return resp, nil
}

// ListProjections answers the room's registered queries from the
// replicated state (on the leader after a read barrier, like every read,
// unless the caller asked for a stale read) and this node's build of
// each. A leader serving a forwarded call leaves the build state out:
// the forwarding node, which the caller called, fills in its own
// (overlayList).
func (qs *queryService) ListProjections(ctx context.Context, req *adminv1.ListProjectionsRequest) (*adminv1.ListProjectionsResponse, error) {
	const command = listProjectionsCommand
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	resp := &adminv1.ListProjectionsResponse{Room: room, Names: []string{}, Projections: []*adminv1.ProjectionInfo{}}
	qs.s.cluster.ViewRoom(room, func(r *statev1.Room) {
		for _, q := range r.GetQueries() {
			resp.Names = append(resp.Names, q.GetName())
			resp.Projections = append(resp.Projections, &adminv1.ProjectionInfo{
				Name:         q.GetName(),
				PathGlob:     q.GetPathGlob(),
				Description:  q.GetDescription(),
				RegisteredAt: timestampMs(q.GetCreatedUnixMs()),
				RegisteredBy: q.GetActor(),
				RaftIndex:    q.GetRaftIndex(),
			})
		}
	})
	if forwardedFrom(ctx) != "" {
		return resp, nil
	}
	return resp, qs.addBuildState(ctx, resp)
}

// overlayList adds this node's build state to a listing the leader
// answered to a forwarded projection.list.
func (qs *queryService) overlayList(m proto.Message) error {
	resp, ok := m.(*adminv1.ListProjectionsResponse)
	if !ok {
		return nil
	}
	return qs.addBuildState(context.Background(), resp)
}

// addBuildState sets this node's build of each listed query. The room's
// history is opened only when something is built here, to tell whether it
// moved since.
func (qs *queryService) addBuildState(ctx context.Context, resp *adminv1.ListProjectionsResponse) error {
	resp.NodeId = qs.s.nodeID
	builds := qs.projections.room(resp.GetRoom())
	root := ""
	if len(builds) > 0 && len(resp.GetProjections()) > 0 {
		var err error
		if root, err = qs.currentRoot(ctx, listProjectionsCommand, resp.GetRoom()); err != nil {
			return err
		}
	}
	for _, info := range resp.GetProjections() {
		info.Built, info.Entries, info.BuiltAt, info.Stale, info.Lamport = false, 0, nil, false, 0
		p, ok := builds[info.GetName()]
		if !ok {
			continue
		}
		info.Built, info.Entries, info.Lamport = true, uint64(len(p.entries)), p.maxLamport
		info.BuiltAt = timestamppb.New(p.builtAt)
		info.Stale = p.stale(root, info.GetRaftIndex())
	}
	return nil
}

func (qs *queryService) InvalidateProjection(ctx context.Context, req *adminv1.InvalidateProjectionRequest) (*adminv1.InvalidateProjectionResponse, error) {
	const command = invalidateProjectionCommand
	room, name := req.GetRoom(), req.GetName()
	if err := checkProjectionRef(command, room, name); err != nil {
		return nil, err
	}
	dropped := qs.projections.drop(projectionKey{room: room, name: name})
	if dropped {
		qs.s.logger.InfoContext(ctx, "projection invalidated", "room", room, "query", name)
	}
	return &adminv1.InvalidateProjectionResponse{Dropped: dropped}, nil
}

// stale reports whether a build no longer shows the current value: the
// room's history on this node moved (its frontier root changed), or the
// query was registered again since (another definition index).
func (p *projection) stale(currentRoot string, definitionIndex uint64) bool {
	return p.root != currentRoot || p.queryIndex != definitionIndex
}

// definition answers a copy of the query as this node's replicated state
// holds it. Builds and reads are node-local, so they read the local
// applied state (build takes min_raft_index to catch up first).
func (qs *queryService) definition(room, name string) (def *statev1.RegisteredQuery, ok bool) {
	qs.s.cluster.ViewRoom(room, func(r *statev1.Room) {
		for _, q := range r.GetQueries() {
			if q.GetName() == name {
				def, ok = proto.Clone(q).(*statev1.RegisteredQuery), true
				return
			}
		}
	})
	return def, ok
}

// currentRoot answers the root of the room's frontier on this node.
func (qs *queryService) currentRoot(ctx context.Context, command, room string) (string, error) {
	var root string
	err := qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		root = history.Root(st.Frontier())
		return nil
	})
	return root, err
}

// waitApplied waits, for at most maxAppliedWait, until this node has
// applied index.
func (qs *queryService) waitApplied(ctx context.Context, command string, index uint64) error {
	wctx, cancel := context.WithTimeout(ctx, maxAppliedWait)
	defer cancel()
	err := qs.s.cluster.WaitApplied(wctx, index)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(codes.Unavailable, "%s: this node has not applied raft index %d within %s; retry, or check min_raft_index", command, index, maxAppliedWait)
	}
	return clusterError(ctx, qs.s.logger, command, err)
}

// checkProjectionRef checks the room and query name of a request.
func checkProjectionRef(command, room, name string) error {
	if err := checkRoom(command, room); err != nil {
		return err
	}
	if !raftstore.ValidQueryName(name) {
		return invalidArg(command, "name: %s", raftstore.QueryNameHelp)
	}
	return nil
}

// printable reports whether s is UTF-8 text without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// maxStateActor is the longest actor the state machine stores.
const maxStateActor = 256

// stateActor makes an actor name fit the replicated record: printable
// (anything else becomes '?') and at most 256 bytes, cut on a rune
// boundary. Token subjects are chosen by whoever minted the token; a
// strange one must not make the registration fail.
func stateActor(actor string) string {
	var b strings.Builder
	for _, r := range actor {
		if !unicode.IsPrint(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > maxStateActor {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
