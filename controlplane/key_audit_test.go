package controlplane

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// kekStore is a node's view of the keyring with its key-encryption key,
// as node wires it for --kek-file.
type kekStore struct {
	*raftstore.Store
	kek *keyring.KEK
}

func (s kekStore) KEK() *keyring.KEK { return s.kek }

// startServerOn serves an admin server over an already running store,
// with cluster as its view of it (the store itself, or kekStore).
func startServerOn(t *testing.T, p *pkitest.PKI, id string, cluster Cluster) (*Server, string, *recorder) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := p.Node(t, id)
	rec := &recorder{}
	srv, err := NewServer(Config{NodeID: id, TLS: m.ServerConfig(), ClientTLS: m.ClientConfig(""), Cluster: cluster, Audit: rec})
	if err != nil {
		_ = lis.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, lis.Addr().String(), rec
}

func newRoomPub(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(pub)
}

func kidsOf(keys []*statev1.Key, purpose statev1.KeyPurpose) []string {
	var out []string
	for _, k := range keys {
		if k.GetPurpose() == purpose {
			out = append(out, k.GetKid())
		}
	}
	slices.Sort(out)
	return out
}

// TestKeyCommandsAuditKeyIDs: keys.rotate, keys.retire, set-room-key and
// rotate-room-key record the kids they created and superseded, on the
// leader and, through the leader's answer, on a follower that forwarded
// the call; audit.list answers them; automatic rotation (RotateKeyAsNode)
// is audited as the node itself, over the same handler.
func TestKeyCommandsAuditKeyIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("two Raft nodes")
	}
	p := pkitest.New(t)
	n1 := startRealNode(t, p, "n1")
	n2 := startRealNode(t, p, "n2")
	rc := &realCluster{pki: p, nodes: []*realNode{n1, n2}}
	rc.opKid, rc.opPriv = bootstrapRealLeader(t, n1, time.Now())
	ctx := realCtx(t)
	j, err := adminv1.NewClusterServiceClient(dialAs(t, p, n1, "n2", true)).Join(ctx, &adminv1.JoinRequest{
		NodeId: "n2", RaftAddr: n2.store.RaftAddr(), AdminAddr: n2.addr,
	})
	if err != nil {
		t.Fatalf("join n2: %v", err)
	}
	waitAll(t, ctx, j.GetRaftIndex(), n1, n2)
	admin := rc.operatorToken(t, "cluster.read", "cluster.admin", "room.admin")
	c1 := newClients(dialAs(t, p, n1, "alice", false))
	c2 := newClients(dialAs(t, p, n2, "alice", false))
	n1.audit.take()
	n2.audit.take()

	oldRT := kidsOf(n1.store.Keys(), statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	rot, err := c2.keys.RotateKey(bearer(ctx, admin), &adminv1.RotateKeyRequest{Purpose: "room-token", Grace: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("RotateKey via the follower: %v", err)
	}
	want := append([]string{rot.GetKid()}, oldRT...)
	ev := eventsOf(n2.audit, "keys.rotate")
	if len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, want) || ev[0].RaftIndex != rot.GetRaftIndex() || ev[0].Transport != TransportGRPC {
		t.Fatalf("follower's keys.rotate events = %+v; want key ids %v", ev, want)
	}
	if ev := eventsOf(n1.audit, "keys.rotate"); len(ev) != 0 {
		t.Fatalf("the leader audited a forwarded call: %+v", ev)
	}
	list, err := c2.audit.ListEvents(bearer(ctx, admin), &adminv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range list.GetEvents() {
		if e.GetCommand() == "keys.rotate" {
			listed = e.GetKeyIds()
		}
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("audit.list key_ids = %v, want %v", listed, want)
	}

	// Retire the superseded key directly on the leader.
	ret, err := c1.keys.RetireKey(bearer(ctx, admin), &adminv1.RetireKeyRequest{Kid: oldRT[0]})
	if err != nil {
		t.Fatalf("RetireKey: %v", err)
	}
	if ev := eventsOf(n1.audit, "keys.retire"); len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, oldRT) || ev[0].RaftIndex != ret.GetRaftIndex() {
		t.Fatalf("keys.retire events = %+v", ev)
	}
	// A refused retirement (the only signer) still names the key tried.
	_, err = c2.keys.RetireKey(bearer(ctx, admin), &adminv1.RetireKeyRequest{Kid: rot.GetKid()})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("retiring the only signer: %v", err)
	}
	if ev := eventsOf(n2.audit, "keys.retire"); len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, []string{rot.GetKid()}) {
		t.Fatalf("refused keys.retire events = %+v", ev)
	}

	// Room keys: set through the follower, rotate on the leader.
	set, err := c2.rooms.SetRoomKey(bearer(ctx, admin), &adminv1.SetRoomKeyRequest{Room: "lobby", Pubkey: newRoomPub(t)})
	if err != nil {
		t.Fatalf("SetRoomKey: %v", err)
	}
	if ev := eventsOf(n2.audit, "set-room-key"); len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, []string{set.GetKid()}) || ev[0].Room != "lobby" {
		t.Fatalf("set-room-key events = %+v", ev)
	}
	rr, err := c1.rooms.RotateRoomKey(bearer(ctx, admin), &adminv1.RotateRoomKeyRequest{Room: "lobby", Pubkey: newRoomPub(t), Kid: "lobby-2"})
	if err != nil {
		t.Fatalf("RotateRoomKey: %v", err)
	}
	if ev := eventsOf(n1.audit, "rotate-room-key"); len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, []string{"lobby-2", set.GetKid()}) || rr.GetKid() != "lobby-2" {
		t.Fatalf("rotate-room-key events = %+v", ev)
	}
	// And through the follower, which learns the superseded kid from the leader.
	if _, err := c2.rooms.RotateRoomKey(bearer(ctx, admin), &adminv1.RotateRoomKeyRequest{Room: "lobby", Pubkey: newRoomPub(t), Kid: "lobby-3"}); err != nil {
		t.Fatalf("RotateRoomKey via the follower: %v", err)
	}
	if ev := eventsOf(n2.audit, "rotate-room-key"); len(ev) != 1 || !slices.Equal(ev[0].KeyIDs, []string{"lobby-3", "lobby-2"}) {
		t.Fatalf("forwarded rotate-room-key events = %+v", ev)
	}

	// Automatic rotation: the same handler, audited as the node.
	oldOp := kidsOf(n1.store.Keys(), statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)
	auto, err := n1.srv.RotateKeyAsNode(ctx, &adminv1.RotateKeyRequest{Purpose: "operator", Grace: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("RotateKeyAsNode: %v", err)
	}
	ev = eventsOf(n1.audit, "keys.rotate")
	if len(ev) != 1 {
		t.Fatalf("automatic rotation events = %+v", ev)
	}
	got := ev[0]
	if got.Actor != "node:n1" || got.Transport != TransportInternal || got.Decision != DecisionAllow || got.Requires != "cluster.admin" ||
		got.RaftIndex != auto.GetRaftIndex() || !slices.Equal(got.KeyIDs, append([]string{auto.GetKid()}, oldOp...)) {
		t.Fatalf("automatic rotation event = %+v", got)
	}
	// Invalid input is refused by the same validation, and audited.
	if _, err := n1.srv.RotateKeyAsNode(ctx, &adminv1.RotateKeyRequest{Purpose: "bogus"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad purpose: %v", err)
	}
	if ev := eventsOf(n1.audit, "keys.rotate"); len(ev) != 1 || ev[0].RaftIndex != 0 || len(ev[0].KeyIDs) != 0 {
		t.Fatalf("refused automatic rotation events = %+v", ev)
	}
	// On a follower it cannot apply: UNAVAILABLE, never forwarded.
	if _, err := n2.srv.RotateKeyAsNode(ctx, &adminv1.RotateKeyRequest{Purpose: "operator"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("RotateKeyAsNode on a follower: %v", err)
	}
}

// TestLogAuditorKeyIDs: the slog audit line carries the key ids of key
// commands and nothing extra on other lines.
func TestLogAuditorKeyIDs(t *testing.T) {
	var buf bytes.Buffer
	a := logAuditor{logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	a.Record(context.Background(), AuditEvent{Command: "keys.rotate", Decision: DecisionAllow, KeyIDs: []string{"rt-aaaaaaaaaaaa", "rt-bbbbbbbbbbbb"}})
	a.Record(context.Background(), AuditEvent{Command: "cluster.status", Decision: DecisionAllow})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var rec struct {
		Event map[string]any `json:"event"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	ids, _ := rec.Event["key_ids"].([]any)
	if len(ids) != 2 || ids[0] != "rt-aaaaaaaaaaaa" || ids[1] != "rt-bbbbbbbbbbbb" {
		t.Fatalf("key_ids = %v", rec.Event["key_ids"])
	}
	if strings.Contains(lines[1], "key_ids") {
		t.Fatalf("a line without key ids has the field: %s", lines[1])
	}
}

// TestSealedRotationAndMinting: with a KEK the rotated key is proposed
// sealed (its seed is never in the replicated state), the node that holds
// the KEK mints with it, and a node without it answers
// FAILED_PRECONDITION naming the key and the KEK it needs; verification
// needs no KEK.
func TestSealedRotationAndMinting(t *testing.T) {
	p := pkitest.New(t)
	n := startRealNode(t, p, "n1")
	rc := &realCluster{pki: p, nodes: []*realNode{n}}
	rc.opKid, rc.opPriv = bootstrapRealLeader(t, n, time.Now())
	text, err := keyring.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	_, sealedAddr, sealedAudit := startServerOn(t, p, "n1", kekStore{Store: n.store, kek: kek})
	ctx := realCtx(t)
	admin := rc.operatorToken(t, "cluster.read", "cluster.admin", "token.mint", "room.admin")
	withKEK := newClients(dialAs(t, p, &realNode{addr: sealedAddr}, "alice", false))
	without := newClients(dialAs(t, p, n, "alice", false))

	rot, err := withKEK.keys.RotateKey(bearer(ctx, admin), &adminv1.RotateKeyRequest{Purpose: "room-token"})
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	var stored *statev1.Key
	for _, k := range n.store.Keys() {
		if k.GetKid() == rot.GetKid() {
			stored = k
		}
	}
	if stored == nil || len(stored.GetPrivateSeed()) != 0 || len(stored.GetSealedSeed()) != keyring.SealedSeedSize || stored.GetKekId() != kek.ID() {
		t.Fatalf("rotated key as stored: %v", stored)
	}
	if ev := eventsOf(sealedAudit, "keys.rotate"); len(ev) != 1 || ev[0].KeyIDs[0] != rot.GetKid() {
		t.Fatalf("keys.rotate events = %+v", ev)
	}

	peer := newRoomPub(t)
	minted, err := withKEK.tokens.MintRoomToken(bearer(ctx, admin), &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Caps: []string{"room.admin"}})
	if err != nil {
		t.Fatalf("MintRoomToken with the KEK: %v", err)
	}
	if minted.GetToken().GetKid() != rot.GetKid() {
		t.Fatalf("minted with %s, want the sealed key %s", minted.GetToken().GetKid(), rot.GetKid())
	}
	tok := token.RoomToken{PeerPubkey: minted.GetToken().GetPeerPubkey(), Expiry: minted.GetToken().GetExpiry(),
		Caps: minted.GetToken().GetCaps(), Sig: minted.GetToken().GetSig(), Kid: minted.GetToken().GetKid()}
	peerKey, _ := hex.DecodeString(peer)
	pubs := keyring.ClusterRoomVerifyKeys(n.store.Keys(), tok.Kid, time.Now())
	if err := token.VerifyRoom(&tok, "r", peerKey, pubs, time.Now()); err != nil {
		t.Fatalf("the token signed with the opened sealed key does not verify: %v", err)
	}

	_, err = without.tokens.MintRoomToken(bearer(ctx, admin), &adminv1.MintRoomTokenRequest{Room: "r", PeerPubkey: peer, Caps: []string{"room.admin"}})
	wantMsg := "key " + rot.GetKid() + " is sealed with KEK " + kek.ID() + "; start with --kek-file holding that key"
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), wantMsg) {
		t.Fatalf("MintRoomToken without the KEK: %v; want FAILED_PRECONDITION with %q", err, wantMsg)
	}
	// The operator key is still plain: minting operator tokens works on both.
	if _, err := without.tokens.MintOperatorToken(bearer(ctx, admin), &adminv1.MintOperatorTokenRequest{Subject: "x", Caps: []string{"cluster.read"}}); err != nil {
		t.Fatalf("MintOperatorToken with a plain key and no KEK: %v", err)
	}
}
