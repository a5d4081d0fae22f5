package controlplane

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/roomname"
	"github.com/nodalmerge/nodalmerge-go/token"
)

var everyCap = []string{"cluster.read", "cluster.admin", "room.admin", "policy.admin", "tick.admin", "topology.admin", "token.mint"}

func pubHex(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(pub), pub
}

// TestRequestValidation sends each invalid request through the full gRPC
// chain and checks the exact InvalidArgument (or other) answer; nothing
// may reach the cluster.
func TestRequestValidation(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := newClients(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims(everyCap...)))
	peer, _ := pubHex(t)
	badRoom := "room/with/slash"
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"set-policy room", func() error {
			_, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: badRoom, Default: "allow"})
			return err
		}, codes.InvalidArgument, "set-policy: " + roomname.Help},
		{"set-policy default", func() error {
			_, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: "r", Default: "maybe"})
			return err
		}, codes.InvalidArgument, "set-policy: default must be allow or deny"},
		{"set-policy glob", func() error {
			_, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: "r", Default: "deny", Rules: []*adminv1.PolicyRule{{PathGlob: ""}}})
			return err
		}, codes.InvalidArgument, "set-policy: rule 0: path_glob must be 1 to 256 bytes, e.g. world/**"},
		{"set-policy writer", func() error {
			_, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: "r", Default: "deny", Rules: []*adminv1.PolicyRule{{PathGlob: "a/**", CanWrite: []string{"zz"}}}})
			return err
		}, codes.InvalidArgument, "set-policy: rule 0: can_write 0 must be 64 hex characters (a 32-byte Ed25519 public key)"},
		{"get-policy room", func() error {
			_, err := c.policy.GetPolicy(ctx, &adminv1.GetPolicyRequest{})
			return err
		}, codes.InvalidArgument, "get-policy: " + roomname.Help},
		{"lock-room mode", func() error {
			_, err := c.rooms.LockRoom(ctx, &adminv1.LockRoomRequest{Room: "r", Mode: "open"})
			return err
		}, codes.InvalidArgument, "lock-room: mode must be cluster or own-keys"},
		{"set-room-key pubkey", func() error {
			_, err := c.rooms.SetRoomKey(ctx, &adminv1.SetRoomKeyRequest{Room: "r", Pubkey: strings.Repeat("g", 64)})
			return err
		}, codes.InvalidArgument, "set-room-key: pubkey must be 64 hex characters (a 32-byte Ed25519 public key)"},
		{"set-room-key kid", func() error {
			_, err := c.rooms.SetRoomKey(ctx, &adminv1.SetRoomKeyRequest{Room: "r", Pubkey: peer, Kid: "a b"})
			return err
		}, codes.InvalidArgument, "set-room-key: kid may hold only A-Z a-z 0-9 - _ . (or be empty to derive it)"},
		{"rotate-room-key grace", func() error {
			_, err := c.rooms.RotateRoomKey(ctx, &adminv1.RotateRoomKeyRequest{Room: "r", Pubkey: peer, Grace: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument, "rotate-room-key: grace -1s is out of range: use 0s to 8760h0m0s (or leave it unset for 24h0m0s)"},
		{"evict-peer peer", func() error {
			_, err := c.rooms.EvictPeer(ctx, &adminv1.EvictPeerRequest{Room: "r"})
			return err
		}, codes.InvalidArgument, "evict-peer: peer_pubkey is required: must be 64 hex characters (a 32-byte Ed25519 public key)"},
		{"compact-room without a store", func() error {
			_, err := c.rooms.CompactRoom(ctx, &adminv1.CompactRoomRequest{Room: "r"})
			return err
		}, codes.FailedPrecondition, "compact-room: no room store on this node"},
		{"describe-room unknown", func() error {
			_, err := c.rooms.DescribeRoom(ctx, &adminv1.DescribeRoomRequest{Room: "ghost"})
			return err
		}, codes.NotFound, "describe-room: room ghost has no security state and is not live on this node"},
		{"keys.rotate purpose", func() error {
			_, err := c.keys.RotateKey(ctx, &adminv1.RotateKeyRequest{})
			return err
		}, codes.InvalidArgument, "keys.rotate: purpose must be room-token or operator"},
		{"keys.rotate prepublish", func() error {
			_, err := c.keys.RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "operator", Prepublish: durationpb.New(31 * 24 * time.Hour)})
			return err
		}, codes.InvalidArgument, "keys.rotate: prepublish 744h0m0s is out of range: use 0s to 720h0m0s (or leave it unset for 0s)"},
		{"keys.list purpose", func() error {
			_, err := c.keys.ListKeys(ctx, &adminv1.ListKeysRequest{Purpose: "signing"})
			return err
		}, codes.InvalidArgument, "keys.list: purpose must be room-token or operator (or empty for both)"},
		{"keys.retire unknown", func() error {
			_, err := c.keys.RetireKey(ctx, &adminv1.RetireKeyRequest{Kid: "op-000"})
			return err
		}, codes.NotFound, `keys.retire: no key "op-000" (see keys.list)`},
		{"keys.retire empty", func() error {
			_, err := c.keys.RetireKey(ctx, &adminv1.RetireKeyRequest{})
			return err
		}, codes.InvalidArgument, "keys.retire: kid is required (see keys.list)"},
		{"start-tick interval", func() error {
			_, err := c.ticks.StartTick(ctx, &adminv1.StartTickRequest{Room: "r", IntervalMs: 5})
			return err
		}, codes.InvalidArgument, "start-tick: interval_ms must be 10 to 3600000"},
		{"start-tick prefix", func() error {
			_, err := c.ticks.StartTick(ctx, &adminv1.StartTickRequest{Room: "r", IntervalMs: 50, IntentPrefix: "in*"})
			return err
		}, codes.InvalidArgument, `start-tick: intent_prefix must be a key-path prefix of at most 128 bytes without * (default "intent/")`},
		{"place-room member", func() error {
			_, err := c.topology.PlaceRoom(ctx, &adminv1.PlaceRoomRequest{Room: "r", NodeIds: []string{"n7"}})
			return err
		}, codes.NotFound, `topology.place-room: "n7" is not a member (see cluster.list-members)`},
		{"drain-node empty", func() error {
			_, err := c.topology.DrainNode(ctx, &adminv1.DrainNodeRequest{})
			return err
		}, codes.InvalidArgument, "topology.drain-node: node_id is required: name a member (see cluster.list-members)"},
		{"remove-member unknown", func() error {
			_, err := c.cluster.RemoveMember(ctx, &adminv1.RemoveMemberRequest{NodeId: "n7"})
			return err
		}, codes.NotFound, `cluster.remove-member: no member "n7" (see cluster.list-members)`},
		{"transfer to self", func() error {
			_, err := c.cluster.TransferLeadership(ctx, &adminv1.TransferLeadershipRequest{NodeId: "n1"})
			return err
		}, codes.FailedPrecondition, "cluster.transfer-leadership: n1 already leads"},
		{"transfer to non-voter", func() error {
			_, err := c.cluster.TransferLeadership(ctx, &adminv1.TransferLeadershipRequest{NodeId: "n2"})
			return err
		}, codes.NotFound, `cluster.transfer-leadership: "n2" is not a voting member (see cluster.list-members)`},
		{"mint-room peer", func() error {
			_, err := c.tokens.MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{Room: "r"})
			return err
		}, codes.InvalidArgument, "token.mint-room: peer_pubkey is required: must be 64 hex characters (a 32-byte Ed25519 public key)"},
		{"mint-room cluster.node", func() error {
			_, err := c.tokens.MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Caps: []string{"cluster.node"}})
			return err
		}, codes.InvalidArgument, "token.mint-room: caps: capability cluster.node is held only by node certificates"},
		{"mint-room glob", func() error {
			_, err := c.tokens.MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Caps: []string{"write:a/**/**x"}})
			return err
		}, codes.InvalidArgument, "token.mint-room: caps: cap 0 is not a valid path glob (e.g. write:world/**)"},
		{"mint-room escalation", func() error {
			_, err := c.tokens.MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Caps: []string{"archive.admin"}})
			return err
		}, codes.PermissionDenied, "token.mint-room: cannot grant archive.admin: the calling token does not hold it"},
		{"mint-room ttl", func() error {
			_, err := c.tokens.MintRoomToken(ctx, &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Ttl: durationpb.New(25 * time.Hour)})
			return err
		}, codes.InvalidArgument, "token.mint-room: ttl 25h0m0s is out of range: use 1s to 24h0m0s (or leave it unset for 1h0m0s)"},
		{"revoke nothing", func() error {
			_, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{})
			return err
		}, codes.InvalidArgument, "token.revoke: name what to revoke: token_id, or room and peer_pubkey"},
		{"revoke both", func() error {
			_, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{TokenId: "t", Room: "r", PeerPubkey: peer})
			return err
		}, codes.InvalidArgument, "token.revoke: give token_id, or room and peer_pubkey, not both"},
		{"revoke peer without room", func() error {
			_, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{PeerPubkey: peer})
			return err
		}, codes.InvalidArgument, "token.revoke: room is required with peer_pubkey"},
		{"revoke past", func() error {
			_, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{TokenId: "t", Until: timestamppb.New(e.now.Add(-time.Second))})
			return err
		}, codes.InvalidArgument, "token.revoke: until is in the past: leave it unset to revoke for good"},
		{"revoke token id", func() error {
			_, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{TokenId: "a b"})
			return err
		}, codes.InvalidArgument, "token.revoke: token_id must be printable ASCII without spaces (a jti or a room token id)"},
		{"audit limit", func() error {
			_, err := c.audit.ListEvents(ctx, &adminv1.ListEventsRequest{Limit: 1001})
			return err
		}, codes.InvalidArgument, "audit.list: limit must be at most 1000 (page with since)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, tt.call(), tt.code, tt.msg)
		})
	}
	if applied := e.cluster.takeApplied(); len(applied) != 0 {
		t.Fatalf("invalid requests reached the cluster: %v", applied)
	}
}

// TestServicesProposeCommands checks the commands handlers propose and
// what they answer, against the recording cluster.
func TestServicesProposeCommands(t *testing.T) {
	dp := &fakeDataPlane{}
	dp.set("lobby", 2, 9, 30)
	e := newEnv(t, envOptions{dataPlane: dp})
	c := newClients(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims(everyCap...)))
	peer, pub := pubHex(t)

	rot, err := c.keys.RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "operator", Prepublish: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	applied := e.cluster.takeApplied()
	rk := applied[0].GetRotateKey()
	if len(applied) != 1 || rk.GetNewKey().GetKid() != rot.GetKid() || rk.GetGraceMs() != (24*time.Hour).Milliseconds() ||
		rk.GetNewKey().GetState() != statev1.KeyState_KEY_STATE_PREPUBLISHED ||
		rk.GetNewKey().GetActivateUnixMs() != e.now.Add(time.Hour).UnixMilli() || applied[0].GetProposedUnixMs() != e.now.UnixMilli() ||
		!rot.GetActivatesAt().AsTime().Equal(e.now.Add(time.Hour)) || rot.GetRaftIndex() == 0 {
		t.Fatalf("RotateKey = %v proposing %v", rot, applied)
	}
	if ev := e.audit.take(); ev[len(ev)-1].RaftIndex != rot.GetRaftIndex() {
		t.Fatalf("audit raft index = %+v, want %d", ev, rot.GetRaftIndex())
	}

	set, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: "lobby", Default: "deny",
		Rules: []*adminv1.PolicyRule{{PathGlob: "world/**", CanWrite: []string{peer}}}})
	if err != nil || set.GetEffectiveLamport() != 10 {
		t.Fatalf("SetPolicy = %v, %v; want effective lamport 10 (room max 9)", set, err)
	}
	got, err := c.policy.GetPolicy(ctx, &adminv1.GetPolicyRequest{Room: "lobby"})
	want := &adminv1.GetPolicyResponse{Room: "lobby", Default: "deny",
		Rules: []*adminv1.PolicyRule{{PathGlob: "world/**", CanWrite: []string{peer}}},
		Timeline: []*adminv1.PolicyEntry{{EffectiveLamport: 10, Default: "deny",
			Rules: []*adminv1.PolicyRule{{PathGlob: "world/**", CanWrite: []string{peer}}}, SetAt: timestamppb.New(e.now)}}}
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("GetPolicy = %v, %v\nwant %v", got, err, want)
	}
	// A room without entries allows everything.
	if open, err := c.policy.GetPolicy(ctx, &adminv1.GetPolicyRequest{Room: "fresh"}); err != nil || open.GetDefault() != "allow" || len(open.GetTimeline()) != 0 {
		t.Fatalf("GetPolicy(fresh) = %v, %v", open, err)
	}
	// The next entry goes above the last even when the room has not grown.
	if again, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: "lobby", Default: "allow"}); err != nil || again.GetEffectiveLamport() != 11 {
		t.Fatalf("second SetPolicy = %v, %v", again, err)
	}

	sk, err := c.rooms.SetRoomKey(ctx, &adminv1.SetRoomKeyRequest{Room: "lobby", Pubkey: peer, Kid: "mine-1"})
	if err != nil || sk.GetKid() != "mine-1" {
		t.Fatalf("SetRoomKey = %v, %v", sk, err)
	}
	if _, err := c.rooms.LockRoom(ctx, &adminv1.LockRoomRequest{Room: "lobby", Mode: "cluster"}); err != nil {
		t.Fatal(err)
	}
	list, err := c.rooms.ListRooms(ctx, &adminv1.ListRoomsRequest{})
	if err != nil || len(list.GetRooms()) != 1 || !proto.Equal(list.GetRooms()[0], &adminv1.RoomSummary{Room: "lobby", Mode: "cluster", Live: true, Peers: 2}) {
		t.Fatalf("ListRooms = %v, %v", list, err)
	}
	desc, err := c.rooms.DescribeRoom(ctx, &adminv1.DescribeRoomRequest{Room: "lobby"})
	if err != nil || desc.GetMode() != "cluster" || desc.GetPolicyEntries() != 2 || len(desc.GetKeys()) != 1 ||
		desc.GetKeys()[0].GetPublicKey() != peer || desc.GetNodes() != 30 || desc.GetPeers() != 2 {
		t.Fatalf("DescribeRoom = %v, %v", desc, err)
	}
	if _, err := c.rooms.EvictPeer(ctx, &adminv1.EvictPeerRequest{Room: "lobby", PeerPubkey: peer}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tokens.Revoke(ctx, &adminv1.RevokeRequest{Room: "lobby", PeerPubkey: peer, Until: timestamppb.New(e.now.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ticks.StartTick(ctx, &adminv1.StartTickRequest{Room: "lobby", IntervalMs: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.topology.DrainNode(ctx, &adminv1.DrainNodeRequest{NodeId: "n2", Undrain: true}); status.Code(err) != codes.NotFound {
		t.Fatalf("drain of a node without a member record: %v", err)
	}
	var kinds []string
	for _, cmd := range e.cluster.takeApplied() {
		kinds = append(kinds, fmt.Sprintf("%T", cmd.GetKind()))
		switch k := cmd.GetKind().(type) {
		case *statev1.Command_EvictPeer:
			if string(k.EvictPeer.GetPeerPubkey()) != string(pub) {
				t.Errorf("evict peer = %x", k.EvictPeer.GetPeerPubkey())
			}
		case *statev1.Command_Revoke:
			r := k.Revoke.GetRevocation()
			if r.GetRoom() != "lobby" || string(r.GetPeerPubkey()) != string(pub) || r.GetActor() != "alice/tok-1" ||
				r.GetUntilUnixMs() != e.now.Add(time.Hour).UnixMilli() || r.GetTokenId() != "" {
				t.Errorf("revocation = %v", r)
			}
		case *statev1.Command_PutTick:
			if k.PutTick.GetTick().GetIntentPrefix() != "intent/" {
				t.Errorf("tick = %v", k.PutTick.GetTick())
			}
		}
	}
	wantKinds := []string{"*statev1.Command_SetPolicy", "*statev1.Command_SetPolicy", "*statev1.Command_PutRoomKey",
		"*statev1.Command_SetRoomLock", "*statev1.Command_EvictPeer", "*statev1.Command_Revoke", "*statev1.Command_PutTick"}
	if fmt.Sprint(kinds) != fmt.Sprint(wantKinds) {
		t.Fatalf("proposed %v\nwant %v", kinds, wantKinds)
	}

	// The state machine's refusal reaches the caller with its reason.
	e.cluster.mu.Lock()
	e.cluster.applyErr = fmt.Errorf("raftstore: apply: %w", &raftstore.RejectedError{Reason: `no tick for room "lobby"`})
	e.cluster.mu.Unlock()
	_, err = c.ticks.StopTick(ctx, &adminv1.StopTickRequest{Room: "lobby"})
	wantStatus(t, err, codes.FailedPrecondition, `stop-tick: no tick for room "lobby"`)
	e.cluster.mu.Lock()
	e.cluster.applyErr = fmt.Errorf("raftstore: apply: %w", &raftstore.NotLeaderError{LeaderID: "n2"})
	e.cluster.mu.Unlock()
	_, err = c.ticks.StopTick(ctx, &adminv1.StopTickRequest{Room: "lobby"})
	wantStatus(t, err, codes.Unavailable, "not the leader: leadership moved during the call; retry")
	e.cluster.mu.Lock()
	e.cluster.applyErr = errors.Join(raftstore.ErrLeadershipLost)
	e.cluster.mu.Unlock()
	_, err = c.ticks.StopTick(ctx, &adminv1.StopTickRequest{Room: "lobby"})
	wantStatus(t, err, codes.Unavailable, "stop-tick: leadership was lost while applying, so the outcome is unknown: check the state, then retry")
}

// TestMintRoomTokenLimits checks lifetime capping and path-grant
// no-escalation for a WebSocket caller whose own token is limited.
func TestMintRoomTokenLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := NewDispatcher(e.srv)
	peer, _ := pubHex(t)
	caller := WSCall{Room: "lobby", Command: "token.mint-room", Pubkey: peer,
		Caps: []string{"token.mint", "write:world/**"}, TokenExpiry: uint64(e.now.Add(10 * time.Minute).Unix())}

	caller.Payload = []byte(`{"peer_pubkey":"` + peer + `","caps":["write:world/**"],"ttl":"3600s"}`)
	f := wsFrame(t, d.Call(callCtx(t), caller))
	if f["type"] != "token.mint-room-result" {
		t.Fatalf("frame = %v", f)
	}
	tok := f["token"].(map[string]any)
	if tok["expiry"] != fmt.Sprint(e.now.Add(10*time.Minute).Unix()) {
		t.Fatalf("expiry %v: the minted token must not outlive the caller's (%d)", tok["expiry"], e.now.Add(10*time.Minute).Unix())
	}
	rt := &token.RoomToken{PeerPubkey: tok["peer_pubkey"].(string), Caps: []string{"write:world/**"}, Sig: tok["sig"].(string), Kid: tok["kid"].(string)}
	fmt.Sscan(tok["expiry"].(string), &rt.Expiry)
	if rt.ID() != f["token_id"] {
		t.Fatalf("token_id %v, want %s", f["token_id"], rt.ID())
	}
	for payload, msg := range map[string]string{
		`{"peer_pubkey":"` + peer + `"}`:                     "token.mint-room: cannot grant unlimited write access: the calling token is limited to world/**; list write: grants among them",
		`{"peer_pubkey":"` + peer + `","caps":["write:**"]}`: "token.mint-room: cannot grant write:**: the calling token's write grants do not include it",
	} {
		caller.Payload = []byte(payload)
		if f := wsFrame(t, d.Call(callCtx(t), caller)); f["msg"] != msg {
			t.Errorf("%s: frame %v; want msg %q", payload, f, msg)
		}
	}
}

func TestJoinAndRemoveMember(t *testing.T) {
	e := newEnv(t, envOptions{})
	node := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Node(t, "n3")))
	_, err := node.Join(callCtx(t), &adminv1.JoinRequest{NodeId: "n3", AdminAddr: "127.0.0.1:1"})
	wantStatus(t, err, codes.InvalidArgument, "cluster.join: raft_addr is required: the host:port other nodes reach this node on")
	_, err = node.Join(callCtx(t), &adminv1.JoinRequest{NodeId: "n4", RaftAddr: "127.0.0.1:2", AdminAddr: "127.0.0.1:1"})
	wantStatus(t, err, codes.PermissionDenied, `cluster.join: node_id "n4" is not the node id of the caller's certificate (node:n3): a node joins only as itself`)
	j, err := node.Join(callCtx(t), &adminv1.JoinRequest{NodeId: "n3", RaftAddr: "127.0.0.1:2", AdminAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:3"})
	if err != nil || j.GetLeaderId() != "n1" || j.GetClusterId() != testClusterID {
		t.Fatalf("Join = %v, %v", j, err)
	}
	applied := e.cluster.takeApplied()
	want := &statev1.Member{NodeId: "n3", RaftAddr: "127.0.0.1:2", AdminAddr: "127.0.0.1:1", PublicAddr: "127.0.0.1:3", Voter: true}
	if len(applied) != 1 || !proto.Equal(applied[0].GetPutMember().GetMember(), want) {
		t.Fatalf("Join proposed %v", applied)
	}

	c := newClients(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.admin")))
	rm, err := c.cluster.RemoveMember(ctx, &adminv1.RemoveMemberRequest{NodeId: "n2"})
	if err != nil || rm.GetRaftIndex() == 0 {
		t.Fatalf("RemoveMember = %v, %v", rm, err)
	}
	if applied := e.cluster.takeApplied(); len(applied) != 1 || applied[0].GetRemoveMember().GetNodeId() != "n2" {
		t.Fatalf("RemoveMember proposed %v", applied)
	}
	tr, err := c.cluster.TransferLeadership(ctx, &adminv1.TransferLeadershipRequest{})
	if err != nil || tr.GetRaftIndex() != 18 {
		t.Fatalf("TransferLeadership = %v, %v", tr, err)
	}
}

// TestLeaderReadsUseReadIndex: a read on the leader confirms leadership
// first unless the caller asked for a stale read; node-local commands and
// mutations do not.
func TestLeaderReadsUseReadIndex(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := newClients(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims(everyCap...)))
	reads := func() int {
		e.cluster.mu.Lock()
		defer e.cluster.mu.Unlock()
		n := e.cluster.reads
		e.cluster.reads = 0
		return n
	}
	if _, err := c.keys.ListKeys(ctx, &adminv1.ListKeysRequest{}); err != nil || reads() != 1 {
		t.Fatalf("linearizable read: %v", err)
	}
	stale := metadata.AppendToOutgoingContext(ctx, "nodalmerge-consistency", "stale")
	if _, err := c.keys.ListKeys(stale, &adminv1.ListKeysRequest{}); err != nil || reads() != 0 {
		t.Fatalf("stale read: %v", err)
	}
	if _, err := c.cluster.GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil || reads() != 0 {
		t.Fatalf("node-local read: %v", err)
	}
	if _, err := c.rooms.LockRoom(ctx, &adminv1.LockRoomRequest{Room: "r", Mode: "cluster"}); err != nil || reads() != 0 {
		t.Fatalf("mutation: %v", err)
	}
}
