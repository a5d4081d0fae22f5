package controlplane

import (
	"context"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// Command names whose answers carry this node's local facts.
const (
	listRoomsCommand    = "list-rooms"
	describeRoomCommand = "describe-room"
)

// Lock mode words, as the SPEC and RoomSummary spell them.
const (
	modeOpen    = "open"
	modeOwnKeys = "own-keys"
	modeCluster = "cluster"
)

// modeName answers the word for a lock mode; an unset mode is open.
func modeName(m statev1.LockMode) string {
	switch m {
	case statev1.LockMode_LOCK_MODE_OWN_KEYS:
		return modeOwnKeys
	case statev1.LockMode_LOCK_MODE_CLUSTER:
		return modeCluster
	}
	return modeOpen
}

// roomService manages rooms' security state and reports rooms. Replicated
// facts come from the leader; live facts (live, peers, nodes) are always
// those of the node the caller called: when a call is forwarded, the
// leader leaves them out and the forwarding node fills in its own
// (overlayList, overlayDescribe).
type roomService struct {
	adminv1.UnimplementedRoomServiceServer
	s *Server
}

func (rs *roomService) SetRoomKey(ctx context.Context, req *adminv1.SetRoomKeyRequest) (*adminv1.SetRoomKeyResponse, error) {
	const command = "set-room-key"
	key, err := roomKey(command, req.GetRoom(), req.GetPubkey(), req.GetKid())
	if err != nil {
		return nil, err
	}
	setAuditKeyIDs(ctx, key.GetKid())
	idx, err := rs.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_PutRoomKey{
		PutRoomKey: &statev1.PutRoomKey{Room: req.GetRoom(), Key: key},
	}})
	if err != nil {
		return nil, err
	}
	rs.s.logger.InfoContext(ctx, "room key set", "room", req.GetRoom(), "kid", key.GetKid(), "index", idx)
	return &adminv1.SetRoomKeyResponse{Kid: key.GetKid(), RaftIndex: idx}, nil
}

func (rs *roomService) RotateRoomKey(ctx context.Context, req *adminv1.RotateRoomKeyRequest) (*adminv1.RotateRoomKeyResponse, error) {
	const command = "rotate-room-key"
	key, err := roomKey(command, req.GetRoom(), req.GetPubkey(), req.GetKid())
	if err != nil {
		return nil, err
	}
	grace, err := checkDuration(command, "grace", req.GetGrace(), defaultGrace, 0, maxGrace)
	if err != nil {
		return nil, err
	}
	// The state machine stamps the proposed time as the superseded instant
	// of the keys it replaces, so fix it here to find them afterwards.
	proposed := rs.s.now().UnixMilli()
	idx, err := rs.s.apply(ctx, command, &statev1.Command{ProposedUnixMs: proposed, Kind: &statev1.Command_RotateRoomKey{
		RotateRoomKey: &statev1.RotateRoomKey{Room: req.GetRoom(), NewKey: key, GraceMs: grace.Milliseconds()},
	}})
	if err != nil {
		setAuditKeyIDs(ctx, key.GetKid()) // the attempt, for the auditor
		return nil, err
	}
	superseded := supersededRoomKeys(rs.s.cluster, req.GetRoom(), key.GetKid(), proposed)
	setAuditKeyIDs(ctx, append([]string{key.GetKid()}, superseded...)...)
	rs.s.logger.InfoContext(ctx, "room key rotated", "room", req.GetRoom(), "kid", key.GetKid(), "supersedes", superseded,
		"grace", grace, "index", idx)
	return &adminv1.RotateRoomKeyResponse{Kid: key.GetKid(), RaftIndex: idx}, nil
}

// supersededRoomKeys answers, sorted, the kids of room's keys that the
// rotation to newKid proposed at ms superseded. Read on the leader right
// after the rotation applied; a superseded instant is stamped once.
func supersededRoomKeys(c Cluster, room, newKid string, ms int64) []string {
	var out []string
	c.ViewRoom(room, func(r *statev1.Room) {
		for _, k := range r.GetKeys() {
			if k.GetKid() != newKid && k.GetSupersededUnixMs() == ms {
				out = append(out, k.GetKid())
			}
		}
	})
	slices.Sort(out)
	return out
}

// roomKey validates a room key request and builds the active key; the kid
// is derived from the key when the caller gives none.
func roomKey(command, room, pubHex, kid string) (*statev1.RoomKey, error) {
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	pub, err := checkPubkey(command, "pubkey", pubHex)
	if err != nil {
		return nil, err
	}
	if err := checkKid(command, kid); err != nil {
		return nil, err
	}
	if kid == "" {
		kid = keyring.RoomKeyID(pub)
	}
	return &statev1.RoomKey{Kid: kid, PublicKey: pub, State: statev1.KeyState_KEY_STATE_ACTIVE}, nil
}

func (rs *roomService) LockRoom(ctx context.Context, req *adminv1.LockRoomRequest) (*adminv1.LockRoomResponse, error) {
	const command = "lock-room"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	var mode statev1.LockMode
	switch req.GetMode() {
	case modeCluster:
		mode = statev1.LockMode_LOCK_MODE_CLUSTER
	case modeOwnKeys:
		mode = statev1.LockMode_LOCK_MODE_OWN_KEYS
	default:
		return nil, invalidArg(command, "mode must be cluster or own-keys")
	}
	idx, err := rs.setLock(ctx, command, req.GetRoom(), mode)
	if err != nil {
		return nil, err
	}
	return &adminv1.LockRoomResponse{RaftIndex: idx}, nil
}

func (rs *roomService) UnlockRoom(ctx context.Context, req *adminv1.UnlockRoomRequest) (*adminv1.UnlockRoomResponse, error) {
	const command = "unlock-room"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	idx, err := rs.setLock(ctx, command, req.GetRoom(), statev1.LockMode_LOCK_MODE_OPEN)
	if err != nil {
		return nil, err
	}
	return &adminv1.UnlockRoomResponse{RaftIndex: idx}, nil
}

func (rs *roomService) setLock(ctx context.Context, command, room string, mode statev1.LockMode) (uint64, error) {
	idx, err := rs.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_SetRoomLock{
		SetRoomLock: &statev1.SetRoomLock{Room: room, Mode: mode},
	}})
	if err != nil {
		return 0, err
	}
	rs.s.logger.InfoContext(ctx, "room lock set", "room", room, "mode", modeName(mode), "index", idx)
	return idx, nil
}

func (rs *roomService) ListRooms(ctx context.Context, _ *adminv1.ListRoomsRequest) (*adminv1.ListRoomsResponse, error) {
	var out []*adminv1.RoomSummary
	for _, r := range rs.s.cluster.Rooms() {
		out = append(out, &adminv1.RoomSummary{Room: r.GetName(), Mode: modeName(r.GetLock())})
	}
	resp := &adminv1.ListRoomsResponse{Rooms: out}
	if forwardedFrom(ctx) != "" {
		sortRooms(resp.Rooms)
		return resp, nil
	}
	return resp, rs.overlayList(resp)
}

// overlayList adds this node's live rooms to a listing of replicated rooms.
func (rs *roomService) overlayList(m proto.Message) error {
	resp, ok := m.(*adminv1.ListRoomsResponse)
	if !ok {
		return nil
	}
	live := rs.liveRooms()
	for _, r := range resp.Rooms {
		peers, ok := live[r.GetRoom()]
		r.Live, r.Peers = ok, uint32(peers)
		delete(live, r.GetRoom())
	}
	for _, name := range slices.Sorted(maps.Keys(live)) {
		resp.Rooms = append(resp.Rooms, &adminv1.RoomSummary{Room: name, Mode: modeOpen, Live: true, Peers: uint32(live[name])})
	}
	sortRooms(resp.Rooms)
	return nil
}

func sortRooms(rooms []*adminv1.RoomSummary) {
	slices.SortFunc(rooms, func(a, b *adminv1.RoomSummary) int { return strings.Compare(a.GetRoom(), b.GetRoom()) })
}

// liveRooms answers a copy of the data plane's live rooms (none without
// a data plane).
func (rs *roomService) liveRooms() map[string]int {
	if rs.s.dataPlane == nil {
		return map[string]int{}
	}
	return maps.Clone(rs.s.dataPlane.LiveRooms())
}

func (rs *roomService) DescribeRoom(ctx context.Context, req *adminv1.DescribeRoomRequest) (*adminv1.DescribeRoomResponse, error) {
	const command = "describe-room"
	name := req.GetRoom()
	if err := checkRoom(command, name); err != nil {
		return nil, err
	}
	resp := &adminv1.DescribeRoomResponse{Room: name, Mode: modeOpen}
	if room, known := rs.s.cluster.Room(name); known {
		now := rs.s.now()
		resp.Mode = modeName(room.GetLock())
		resp.Placement = room.GetPlacement()
		resp.PolicyEntries = uint32(len(room.GetPolicy()))
		for _, k := range room.GetKeys() {
			resp.Keys = append(resp.Keys, &adminv1.RoomKeyInfo{
				Kid:         k.GetKid(),
				PublicKey:   hex.EncodeToString(k.GetPublicKey()),
				State:       keyring.StateName(keyring.RoomKeyState(k, now)),
				AddedAt:     timestampMs(k.GetAddedUnixMs()),
				RetireAfter: timestampMs(k.GetRetireAfterUnixMs()),
			})
		}
	}
	for _, t := range rs.s.cluster.Ticks() {
		if t.GetRoom() == name {
			resp.Tick = true
		}
	}
	if forwardedFrom(ctx) != "" {
		// The forwarding node adds its own live facts and decides whether
		// the room exists for its caller.
		return resp, nil
	}
	return resp, rs.overlayDescribe(resp)
}

// overlayDescribe fills in this node's live facts about the room, and
// answers NotFound for a room that has neither replicated state nor a
// live presence here. A room record holding only defaults is as good as
// none: every room name is open until configured.
func (rs *roomService) overlayDescribe(m proto.Message) error {
	resp, ok := m.(*adminv1.DescribeRoomResponse)
	if !ok {
		return nil
	}
	resp.Live, resp.Nodes, resp.Peers = false, 0, 0
	if rs.s.dataPlane != nil {
		_, nodes, live := rs.s.dataPlane.RoomInfo(resp.GetRoom())
		resp.Live, resp.Nodes = live, uint64(nodes)
		if live {
			resp.Peers = uint32(rs.s.dataPlane.LiveRooms()[resp.GetRoom()])
		}
	}
	configured := resp.GetMode() != modeOpen || len(resp.GetKeys()) > 0 || len(resp.GetPlacement()) > 0 ||
		resp.GetPolicyEntries() > 0 || resp.GetTick()
	if !configured && !resp.GetLive() {
		return status.Errorf(codes.NotFound, "%s: room %s has no security state and is not live on this node", describeRoomCommand, resp.GetRoom())
	}
	return nil
}

// EvictPeer proposes an eviction event; every node closes the peer's
// sessions in the room when it applies it. It is not a ban.
func (rs *roomService) EvictPeer(ctx context.Context, req *adminv1.EvictPeerRequest) (*adminv1.EvictPeerResponse, error) {
	const command = "evict-peer"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	pub, err := checkPubkey(command, "peer_pubkey", req.GetPeerPubkey())
	if err != nil {
		return nil, err
	}
	idx, err := rs.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_EvictPeer{
		EvictPeer: &statev1.EvictPeer{Room: req.GetRoom(), PeerPubkey: pub},
	}})
	if err != nil {
		return nil, err
	}
	rs.s.logger.InfoContext(ctx, "peer evicted", "room", req.GetRoom(), "peer", req.GetPeerPubkey(), "index", idx)
	return &adminv1.EvictPeerResponse{RaftIndex: idx}, nil
}

// CompactRoom compacts the room's history on this node only.
func (rs *roomService) CompactRoom(ctx context.Context, req *adminv1.CompactRoomRequest) (*adminv1.CompactRoomResponse, error) {
	const command = "compact-room"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	if rs.s.dataPlane == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: no room store on this node", command)
	}
	start := time.Now()
	nodes, before, after, err := rs.s.dataPlane.CompactRoom(ctx, req.GetRoom())
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return nil, st.Err()
		}
		rs.s.logger.ErrorContext(ctx, "compact-room failed", "room", req.GetRoom(), "error", err)
		return nil, internalError()
	}
	rs.s.logger.InfoContext(ctx, "room compacted", "room", req.GetRoom(), "nodes", nodes,
		"bytes_before", before, "bytes_after", after, "took", time.Since(start))
	return &adminv1.CompactRoomResponse{Nodes: nodes, BytesBefore: before, BytesAfter: after}, nil
}
