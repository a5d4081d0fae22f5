package controlplane

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// TestThreeNodeClusterThroughFollowers runs the admin API against a real
// three-node Raft cluster: joins through the API (one forwarded by a
// follower), mutations sent to followers landing on all three with the
// leader's index, linearizable reads through a follower, every service's
// happy path, the WebSocket door forwarding, and UNAVAILABLE once two of
// the three nodes are gone.
func TestThreeNodeClusterThroughFollowers(t *testing.T) {
	if testing.Short() {
		t.Skip("three Raft nodes")
	}
	p := pkitest.New(t)
	n1 := startRealNode(t, p, "n1")
	n2 := startRealNode(t, p, "n2")
	n3 := startRealNode(t, p, "n3")
	rc := &realCluster{pki: p, nodes: []*realNode{n1, n2, n3}}
	rc.opKid, rc.opPriv = bootstrapRealLeader(t, n1, time.Now())
	ctx := realCtx(t)

	// n2 joins through the leader; n3 through the follower n2, which
	// forwards to n1.
	j2, err := adminv1.NewClusterServiceClient(dialAs(t, p, n1, "n2", true)).Join(ctx, &adminv1.JoinRequest{
		NodeId: "n2", RaftAddr: n2.store.RaftAddr(), AdminAddr: n2.addr,
	})
	if err != nil {
		t.Fatalf("join n2: %v", err)
	}
	if j2.GetClusterId() != realClusterID || j2.GetLeaderId() != "n1" || j2.GetRaftIndex() == 0 {
		t.Fatalf("join n2 = %v", j2)
	}
	waitAll(t, ctx, j2.GetRaftIndex(), n2)
	j3, err := adminv1.NewClusterServiceClient(dialAs(t, p, n2, "n3", true)).Join(ctx, &adminv1.JoinRequest{
		NodeId: "n3", RaftAddr: n3.store.RaftAddr(), AdminAddr: n3.addr,
	})
	if err != nil {
		t.Fatalf("join n3 through n2: %v", err)
	}
	if j3.GetLeaderId() != "n1" || j3.GetRaftIndex() <= j2.GetRaftIndex() {
		t.Fatalf("join n3 = %v", j3)
	}
	waitAll(t, ctx, j3.GetRaftIndex(), n1, n2, n3)
	for _, n := range rc.nodes {
		if m, ok := n.store.Member("n3"); !ok || m.GetAdminAddr() != n3.addr || !m.GetVoter() {
			t.Fatalf("%s: member n3 = %v, %v", n.id, m, ok)
		}
	}
	// The follower audited the forwarded join once, with the leader's
	// index; the leader did not audit it again.
	if ev := eventsOf(n2.audit, "cluster.join"); len(ev) != 1 || ev[0].Actor != "node:n3" || ev[0].RaftIndex != j3.GetRaftIndex() || ev[0].Decision != DecisionAllow {
		t.Fatalf("n2 join events = %+v", ev)
	}
	if ev := eventsOf(n1.audit, "cluster.join"); len(ev) != 1 || ev[0].Actor != "node:n2" {
		t.Fatalf("n1 join events = %+v (only n2's direct join belongs there)", ev)
	}
	// A node joins only as itself.
	_, err = adminv1.NewClusterServiceClient(dialAs(t, p, n1, "n3", true)).Join(ctx, &adminv1.JoinRequest{
		NodeId: "n9", RaftAddr: "127.0.0.1:9", AdminAddr: "127.0.0.1:9",
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("join as another node: %v", err)
	}

	admin := rc.operatorToken(t, "cluster.read", "cluster.admin", "room.admin", "policy.admin", "tick.admin", "topology.admin", "token.mint")
	opCtx := func(t *testing.T) context.Context { return bearer(realCtx(t), admin) }
	conns := map[string]*realNode{"n1": n1, "n2": n2, "n3": n3}
	client := func(n *realNode) *clients { return newClients(dialAs(t, p, conns[n.id], "alice", false)) }
	c1, c2, c3 := client(n1), client(n2), client(n3)

	t.Run("keys rotate through a follower, read through another", func(t *testing.T) {
		before, err := c3.keys.ListKeys(opCtx(t), &adminv1.ListKeysRequest{Purpose: "room-token"})
		if err != nil || len(before.GetKeys()) != 1 || before.GetKeys()[0].GetState() != "active" {
			t.Fatalf("ListKeys = %v, %v", before, err)
		}
		rot, err := c2.keys.RotateKey(opCtx(t), &adminv1.RotateKeyRequest{Purpose: "room-token", Grace: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatalf("RotateKey via n2: %v", err)
		}
		// Linearizable: n3 sees it at once, without waiting.
		after, err := c3.keys.ListKeys(opCtx(t), &adminv1.ListKeysRequest{Purpose: "room-token"})
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, k := range after.GetKeys() {
			states[k.GetKid()] = k.GetState()
			if k.GetPublicKey() == "" || len(k.GetPublicKey()) != 64 {
				t.Errorf("key %s public key %q", k.GetKid(), k.GetPublicKey())
			}
		}
		if states[rot.GetKid()] != "active" || states[before.GetKeys()[0].GetKid()] != "verify-only" {
			t.Fatalf("states after rotation = %v (new %s)", states, rot.GetKid())
		}
		waitAll(t, ctx, rot.GetRaftIndex(), n1, n2, n3)
		for _, n := range rc.nodes {
			if !slices.ContainsFunc(n.store.Keys(), func(k *statev1.Key) bool { return k.GetKid() == rot.GetKid() }) {
				t.Fatalf("%s lacks key %s", n.id, rot.GetKid())
			}
		}
		if ev := eventsOf(n2.audit, "keys.rotate"); len(ev) != 1 || ev[0].RaftIndex != rot.GetRaftIndex() || ev[0].Actor != "ops/op-tok" {
			t.Fatalf("n2 rotate events = %+v", ev)
		}
		if ev := eventsOf(n1.audit, "keys.rotate"); len(ev) != 0 {
			t.Fatalf("leader audited a forwarded call: %+v", ev)
		}
		if _, err := c3.keys.RetireKey(opCtx(t), &adminv1.RetireKeyRequest{Kid: before.GetKeys()[0].GetKid()}); err != nil {
			t.Fatalf("RetireKey: %v", err)
		}
		// The only signing key cannot be retired.
		_, err = c3.keys.RetireKey(opCtx(t), &adminv1.RetireKeyRequest{Kid: rot.GetKid()})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("retiring the last signer: %v", err)
		}
	})

	roomPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("rooms", func(t *testing.T) {
		set, err := c3.rooms.SetRoomKey(opCtx(t), &adminv1.SetRoomKeyRequest{Room: "lobby", Pubkey: hex.EncodeToString(roomPub)})
		if err != nil || set.GetKid() != keyring.RoomKeyID(roomPub) {
			t.Fatalf("SetRoomKey = %v, %v", set, err)
		}
		if _, err := c2.rooms.LockRoom(opCtx(t), &adminv1.LockRoomRequest{Room: "lobby", Mode: "own-keys"}); err != nil {
			t.Fatalf("LockRoom: %v", err)
		}
		n2.dp.set("lobby", 3, 41, 100)
		d, err := c2.rooms.DescribeRoom(opCtx(t), &adminv1.DescribeRoomRequest{Room: "lobby"})
		if err != nil {
			t.Fatal(err)
		}
		// Replicated facts from the leader, live facts from n2.
		if d.GetMode() != "own-keys" || len(d.GetKeys()) != 1 || d.GetKeys()[0].GetState() != "active" ||
			!d.GetLive() || d.GetPeers() != 3 || d.GetNodes() != 100 {
			t.Fatalf("DescribeRoom via n2 = %v", d)
		}
		list, err := c2.rooms.ListRooms(opCtx(t), &adminv1.ListRoomsRequest{})
		if err != nil || len(list.GetRooms()) != 1 || !list.GetRooms()[0].GetLive() || list.GetRooms()[0].GetMode() != "own-keys" {
			t.Fatalf("ListRooms via n2 = %v, %v", list, err)
		}
		if list, err := c3.rooms.ListRooms(opCtx(t), &adminv1.ListRoomsRequest{}); err != nil || list.GetRooms()[0].GetLive() {
			t.Fatalf("ListRooms via n3 (room not live there) = %v, %v", list, err)
		}
		if _, err := c1.rooms.UnlockRoom(opCtx(t), &adminv1.UnlockRoomRequest{Room: "lobby"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c3.rooms.EvictPeer(opCtx(t), &adminv1.EvictPeerRequest{Room: "lobby", PeerPubkey: hex.EncodeToString(roomPub)}); err != nil {
			t.Fatalf("EvictPeer: %v", err)
		}
		_, err = c3.rooms.DescribeRoom(opCtx(t), &adminv1.DescribeRoomRequest{Room: "ghost"})
		wantStatus(t, err, codes.NotFound, "describe-room: room ghost has no security state and is not live on this node")
		comp, err := c2.rooms.CompactRoom(opCtx(t), &adminv1.CompactRoomRequest{Room: "lobby"})
		if err != nil || comp.GetNodes() != 100 || n2.dp.compactedRooms()[0] != "lobby" {
			t.Fatalf("CompactRoom on n2 = %v, %v", comp, err)
		}
	})

	t.Run("policy takes effect after the forwarding node's history", func(t *testing.T) {
		writer := hex.EncodeToString(roomPub)
		set, err := c2.policy.SetPolicy(opCtx(t), &adminv1.SetPolicyRequest{Room: "lobby", Default: "deny",
			Rules: []*adminv1.PolicyRule{{PathGlob: "world/**", CanWrite: []string{writer}}}})
		if err != nil {
			t.Fatal(err)
		}
		if set.GetEffectiveLamport() != 42 {
			t.Fatalf("effective_lamport = %d, want 42 (n2 holds Lamport 41)", set.GetEffectiveLamport())
		}
		got, err := c3.policy.GetPolicy(opCtx(t), &adminv1.GetPolicyRequest{Room: "lobby"})
		if err != nil || got.GetDefault() != "deny" || len(got.GetTimeline()) != 1 || got.GetRules()[0].GetCanWrite()[0] != writer {
			t.Fatalf("GetPolicy via n3 = %v, %v", got, err)
		}
		again, err := c3.policy.SetPolicy(opCtx(t), &adminv1.SetPolicyRequest{Room: "lobby", Default: "allow"})
		if err != nil || again.GetEffectiveLamport() != 43 {
			t.Fatalf("second SetPolicy = %v, %v; want lamport 43", again, err)
		}
	})

	t.Run("ticks and topology", func(t *testing.T) {
		if _, err := c3.ticks.StartTick(opCtx(t), &adminv1.StartTickRequest{Room: "lobby", IntervalMs: 50}); err != nil {
			t.Fatal(err)
		}
		list, err := c2.ticks.ListTicks(opCtx(t), &adminv1.ListTicksRequest{})
		if err != nil || len(list.GetTicks()) != 1 || list.GetTicks()[0].GetRunner() != "n1" || list.GetTicks()[0].GetIntentPrefix() != "intent/" {
			t.Fatalf("ListTicks = %v, %v", list, err)
		}
		if _, err := c2.ticks.StopTick(opCtx(t), &adminv1.StopTickRequest{Room: "lobby"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.ticks.StopTick(opCtx(t), &adminv1.StopTickRequest{Room: "lobby"}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("stopping a stopped tick: %v", err)
		}
		if _, err := c3.topology.PlaceRoom(opCtx(t), &adminv1.PlaceRoomRequest{Room: "lobby", NodeIds: []string{"n2", "n1", "n2"}}); err != nil {
			t.Fatal(err)
		}
		d, err := c3.rooms.DescribeRoom(opCtx(t), &adminv1.DescribeRoomRequest{Room: "lobby"})
		if err != nil || !slices.Equal(d.GetPlacement(), []string{"n1", "n2"}) {
			t.Fatalf("placement = %v, %v", d.GetPlacement(), err)
		}
		drain, err := c2.topology.DrainNode(opCtx(t), &adminv1.DrainNodeRequest{NodeId: "n3"})
		if err != nil {
			t.Fatal(err)
		}
		members, err := c3.cluster.ListMembers(opCtx(t), &adminv1.ListMembersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members.GetMembers() {
			if m.GetDraining() != (m.GetNodeId() == "n3") {
				t.Fatalf("after drain at %d: %v", drain.GetRaftIndex(), members)
			}
		}
	})

	t.Run("tokens", func(t *testing.T) {
		peer, _, _ := ed25519.GenerateKey(rand.Reader)
		minted, err := c3.tokens.MintRoomToken(opCtx(t), &adminv1.MintRoomTokenRequest{
			Room: "lobby", PeerPubkey: hex.EncodeToString(peer), Caps: []string{"write:world/**", "room.admin"},
		})
		if err != nil {
			t.Fatalf("MintRoomToken: %v", err)
		}
		tok := &token.RoomToken{PeerPubkey: minted.GetToken().GetPeerPubkey(), Expiry: minted.GetToken().GetExpiry(),
			Caps: minted.GetToken().GetCaps(), Sig: minted.GetToken().GetSig(), Kid: minted.GetToken().GetKid()}
		keys := keyring.ClusterRoomVerifyKeys(n3.store.Keys(), tok.Kid, time.Now())
		if err := token.VerifyRoom(tok, "lobby", peer, keys, time.Now()); err != nil {
			t.Fatalf("minted token does not verify: %v", err)
		}
		if tok.ID() != minted.GetTokenId() {
			t.Fatalf("token id %s, want %s", minted.GetTokenId(), tok.ID())
		}
		rev, err := c2.tokens.Revoke(opCtx(t), &adminv1.RevokeRequest{TokenId: minted.GetTokenId()})
		if err != nil {
			t.Fatal(err)
		}
		waitAll(t, ctx, rev.GetRaftIndex(), n1, n2, n3)
		for _, n := range rc.nodes {
			if !n.store.IsRevoked(minted.GetTokenId(), "lobby", peer, time.Now()) {
				t.Fatalf("%s: token not revoked", n.id)
			}
		}
		revs := n1.store.Revocations()
		if len(revs) != 1 || revs[0].GetActor() != "ops/op-tok" {
			t.Fatalf("revocations = %v", revs)
		}
	})

	t.Run("websocket commands forward with the session", func(t *testing.T) {
		d := NewDispatcher(n3.srv)
		peer := hex.EncodeToString(roomPub)
		n3.audit.take()
		n1.audit.take()
		frame := d.Call(realCtx(t), WSCall{Room: "lobby", Command: "set-policy", Pubkey: peer,
			Caps: []string{"policy.admin"}, Payload: []byte(`{"type":"set-policy","id":7,"room":"elsewhere","default":"allow"}`)})
		var res struct {
			Type      string `json:"type"`
			ID        int    `json:"id"`
			RaftIndex string `json:"raft_index"`
			Lamport   string `json:"effective_lamport"`
		}
		if err := json.Unmarshal(frame, &res); err != nil || res.Type != "set-policy-result" || res.ID != 7 || res.RaftIndex == "" {
			t.Fatalf("frame %s (%v)", frame, err)
		}
		got, err := c1.policy.GetPolicy(opCtx(t), &adminv1.GetPolicyRequest{Room: "lobby"})
		if err != nil || len(got.GetTimeline()) != 3 {
			t.Fatalf("the session's room was not forced: %v, %v", got, err)
		}
		ev := eventsOf(n3.audit, "set-policy")
		if len(ev) != 1 || ev[0].Transport != TransportWebSocket || ev[0].Actor != peer || ev[0].RaftIndex == 0 {
			t.Fatalf("n3 ws events = %+v", ev)
		}
		if ev := eventsOf(n1.audit, "set-policy"); len(ev) != 0 {
			t.Fatalf("leader audited the forwarded ws call: %+v", ev)
		}
		// The leader applies the no-escalation rule to the session's caps.
		frame = d.Call(realCtx(t), WSCall{Room: "lobby", Command: "token.mint-room", Pubkey: peer, Caps: []string{"token.mint"},
			Payload: []byte(`{"type":"token.mint-room","peer_pubkey":"` + peer + `","caps":["room.admin"]}`)})
		if f := wsFrame(t, frame); f["type"] != "error" || f["msg"] != "token.mint-room: cannot grant room.admin: the calling token does not hold it" {
			t.Fatalf("escalation frame = %s", frame)
		}
	})

	t.Run("stale and linearizable reads", func(t *testing.T) {
		stale := metadata.AppendToOutgoingContext(opCtx(t), "nodalmerge-consistency", "stale")
		n1.audit.take()
		if _, err := c3.keys.ListKeys(stale, &adminv1.ListKeysRequest{}); err != nil {
			t.Fatal(err)
		}
		if after := n1.audit.take(); len(after) != 0 {
			t.Fatalf("a stale read reached the leader: %+v", after)
		}
		bad := metadata.AppendToOutgoingContext(opCtx(t), "nodalmerge-consistency", "eventual")
		if _, err := c3.keys.ListKeys(bad, &adminv1.ListKeysRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("unknown consistency: %v", err)
		}
	})

	t.Run("snapshot and status are local", func(t *testing.T) {
		snap, err := c2.cluster.Snapshot(opCtx(t), &adminv1.SnapshotRequest{})
		if err != nil || snap.GetNodeId() != "n2" || snap.GetRaftIndex() == 0 {
			t.Fatalf("Snapshot on n2 = %v, %v", snap, err)
		}
		st, err := c3.cluster.GetStatus(opCtx(t), &adminv1.GetStatusRequest{})
		if err != nil || st.GetNodeId() != "n3" || st.GetState() != "follower" || st.GetLeaderId() != "n1" {
			t.Fatalf("GetStatus on n3 = %v, %v", st, err)
		}
	})

	t.Run("transfer leadership through a follower", func(t *testing.T) {
		tr, err := c3.cluster.TransferLeadership(opCtx(t), &adminv1.TransferLeadershipRequest{NodeId: "n2"})
		if err != nil || tr.GetLeaderId() != "n2" {
			t.Fatalf("TransferLeadership = %v, %v", tr, err)
		}
		// n3 forwards to the new leader once it learns of it.
		if _, err := n3.store.WaitForLeader(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, ctx, "n3 to follow n2", func() bool { id, _, ok := n3.store.LeaderAdmin(); return ok && id == "n2" })
		if _, err := c3.rooms.LockRoom(opCtx(t), &adminv1.LockRoomRequest{Room: "lobby", Mode: "cluster"}); err != nil {
			t.Fatalf("LockRoom after transfer: %v", err)
		}
	})

	t.Run("no leader is UNAVAILABLE", func(t *testing.T) {
		n1.stop()
		n2.stop()
		eventually(t, ctx, "n3 to lose its leader", func() bool { return n3.store.Status().LeaderID == "" })
		want := "no leader: the cluster is electing or has lost quorum; retry"
		_, err := c3.rooms.LockRoom(opCtx(t), &adminv1.LockRoomRequest{Room: "lobby", Mode: "own-keys"})
		wantStatus(t, err, codes.Unavailable, want)
		_, err = c3.keys.ListKeys(opCtx(t), &adminv1.ListKeysRequest{})
		wantStatus(t, err, codes.Unavailable, want)
		// Node-local and stale reads still answer.
		if _, err := c3.cluster.GetStatus(opCtx(t), &adminv1.GetStatusRequest{}); err != nil {
			t.Fatalf("GetStatus without a leader: %v", err)
		}
		stale := metadata.AppendToOutgoingContext(opCtx(t), "nodalmerge-consistency", "stale")
		if _, err := c3.keys.ListKeys(stale, &adminv1.ListKeysRequest{}); err != nil {
			t.Fatalf("stale read without a leader: %v", err)
		}
	})
}
