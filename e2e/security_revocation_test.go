package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// revokeBound is SPEC section 3's bound from a revocation to the close of
// every affected session on every node.
const revokeBound = time.Second

// retiredReasons are the refusals a token signed by a retired key gets:
// retiring a key revokes its tokens, so a token naming (kid) a retired key
// that did sign it is refused as "token revoked" (node/admission.go).
func retiredReasons() []string { return []string{token.ReasonRevoked} }

// joinEverywhere opens one session per node for key with tok.
func (sc *secCluster) joinEverywhere(ctx context.Context, room, name string, key ed25519.PrivateKey, tok json.RawMessage) []*wsSession {
	sc.t.Helper()
	out := make([]*wsSession, len(sc.nodes))
	for i := range sc.nodes {
		out[i] = sc.mustJoin(ctx, i, room, fmt.Sprintf("%s@%s", name, sc.nodes[i].id), key, tok)
	}
	return out
}

// expectRevoked waits for every session to close with 4003 "token
// revoked" and checks each close came within revokeBound of effective (when
// the revocation was in force: the Revoke call returned, or a grace
// ended). It answers the time from start (the operator's action) to the
// last close.
func (sc *secCluster) expectRevoked(ctx context.Context, what string, sessions []*wsSession, start, effective time.Time) time.Duration {
	sc.t.Helper()
	var last time.Time
	for _, s := range sessions {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		code, text, at, err := s.closed(wctx)
		cancel()
		if err != nil {
			sc.t.Errorf("%s: %v", what, err)
			continue
		}
		if code != closeTokenRevoked || text != "token revoked" {
			sc.t.Errorf("%s: %s closed with %d %q, want %d %q", what, s.name, code, text, closeTokenRevoked, "token revoked")
		}
		if d := at.Sub(effective); d > revokeBound {
			sc.t.Errorf("%s: %s closed %s after the revocation took effect; SPEC allows %s", what, s.name, d.Round(time.Millisecond), revokeBound)
		}
		if at.After(last) {
			last = at
		}
	}
	d := last.Sub(start)
	sc.t.Logf("%s: revoke → last of %d sessions (one per node) closed: %s", what, len(sessions), d.Round(time.Millisecond))
	return d
}

// expectRefusedAny is expectRefused for a refusal that may carry one of
// several reasons; it answers the one seen.
func (sc *secCluster) expectRefusedAny(ctx context.Context, i int, room, what string, key ed25519.PrivateKey, tok json.RawMessage, reasons []string) string {
	sc.t.Helper()
	s, err := sc.joinWS(ctx, i, room, what, key, tok)
	if err == nil {
		s.close()
		sc.t.Errorf("%s on %s: admitted, want one of %q", what, sc.nodes[i].id, reasons)
		return ""
	}
	var he *client.HelloError
	if !errors.As(err, &he) || !slices.ContainsFunc(reasons, func(r string) bool { return he.Msg == "auth: "+r }) {
		sc.t.Errorf("%s on %s: %v, want the error envelope with one of %q", what, sc.nodes[i].id, err, reasons)
		return ""
	}
	if code, _, ok := client.CloseError(he.Err); !ok || code != closePolicy {
		sc.t.Errorf("%s on %s: after the error the connection ended with %v, want close %d", what, sc.nodes[i].id, he.Err, closePolicy)
	}
	return he.Msg
}

// TestRevocationClosesSessionsOnEveryNode opens sessions on all three
// nodes and revokes them four ways: by token id, by peer in a room (with
// an end time), by retiring the cluster key that signed them, and by a
// room key rotation whose grace ends. Each time every affected session
// closes with 4003 within a second on every node, the revoked credential
// is refused at hello everywhere, and sessions not concerned stay open.
func TestRevocationClosesSessionsOnEveryNode(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const room = "e2e-revoke"
	sc.lock(0, room, "cluster")
	var worst time.Duration

	bysPub, bysKey := newKey(t)
	bystanders := sc.joinEverywhere(ctx, room, "bystander", bysKey, sc.mintRoomToken(0, room, bysPub, nil, 10*time.Minute).raw)

	// 1. By token id, through a node other than the one that minted it.
	pub, key := newKey(t)
	mt := sc.mintRoomToken(1, room, pub, nil, 10*time.Minute)
	sessions := sc.joinEverywhere(ctx, room, "by-token", key, mt.raw)
	start := time.Now()
	done, _ := sc.revoke(2, &adminv1.RevokeRequest{TokenId: mt.id, Room: room})
	worst = max(worst, sc.expectRevoked(ctx, "revoke by token id", sessions, start, done))
	for i := range sc.nodes {
		sc.expectRefused(ctx, i, room, "revoked token", key, mt.raw, token.ReasonRevoked)
	}
	// Revoking a token is not banning its peer. (Another lifetime: the
	// same claims signed in the same second are the same token, since
	// Ed25519 signatures are deterministic.)
	sc.mustJoin(ctx, 0, room, "same peer, new token", key, sc.mintRoomToken(0, room, pub, nil, 11*time.Minute).raw).alive(ctx, t)

	// 2. By peer in the room, until a time: every token of that peer is
	// refused until then, and accepted again afterwards.
	pub2, key2 := newKey(t)
	sessions = sc.joinEverywhere(ctx, room, "by-peer", key2, sc.mintRoomToken(2, room, pub2, nil, 10*time.Minute).raw)
	until := time.Now().Add(4 * time.Second)
	start = time.Now()
	done, _ = sc.revoke(0, &adminv1.RevokeRequest{Room: room, PeerPubkey: hex.EncodeToString(pub2), Until: timestamppb.New(until)})
	worst = max(worst, sc.expectRevoked(ctx, "revoke by peer", sessions, start, done))
	another := sc.mintRoomToken(1, room, pub2, nil, 10*time.Minute)
	for i := range sc.nodes {
		if time.Now().Before(until) {
			sc.expectRefused(ctx, i, room, "revoked peer, new token", key2, another.raw, token.ReasonRevoked)
		}
	}
	for i := range sc.nodes {
		var last error
		sc.eventually("the peer revocation to lapse on "+sc.nodes[i].id, func() bool {
			if time.Now().Before(until) {
				return false
			}
			s, err := sc.joinWS(ctx, i, room, "after until", key2, another.raw)
			if err != nil {
				last = err
				return false
			}
			s.close()
			return true
		}, func() string { return fmt.Sprint(last) })
	}
	for _, s := range bystanders {
		s.alive(ctx, t)
	}

	// 3. By retiring the cluster key that signed the tokens. A rotation
	// first, since the last signing key cannot be retired; tokens from
	// the new key are the bystanders now.
	oldKid := mt.tok.Kid
	pub3, key3 := newKey(t)
	old := sc.mintRoomToken(0, room, pub3, nil, 10*time.Minute)
	sessions = sc.joinEverywhere(ctx, room, "old-key", key3, old.raw)
	rot := must(t, "RotateKey", func(ctx context.Context) (*adminv1.RotateKeyResponse, error) {
		return sc.keys(1).RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "room-token", Grace: durationpb.New(time.Hour)})
	})
	sc.waitAppliedEverywhere(rot.GetRaftIndex())
	pub4, key4 := newKey(t)
	fresh := sc.mintRoomToken(2, room, pub4, nil, 10*time.Minute)
	if fresh.tok.Kid != rot.GetKid() || old.tok.Kid != oldKid {
		t.Fatalf("signing kids: before rotation %s (want %s), after %s (want %s)", old.tok.Kid, oldKid, fresh.tok.Kid, rot.GetKid())
	}
	survivors := sc.joinEverywhere(ctx, room, "new-key", key4, fresh.raw)
	for _, s := range sessions {
		if !s.open() {
			t.Errorf("%s was closed by the rotation itself; its key still verifies", s.name)
		}
	}
	start = time.Now()
	must(t, "RetireKey", func(ctx context.Context) (*adminv1.RetireKeyResponse, error) {
		return sc.keys(0).RetireKey(ctx, &adminv1.RetireKeyRequest{Kid: oldKid})
	})
	worst = max(worst, sc.expectRevoked(ctx, "retire the signing key", sessions, start, time.Now()))
	for i := range sc.nodes {
		got := sc.expectRefusedAny(ctx, i, room, "token of a retired key", key3, old.raw, retiredReasons())
		t.Logf("token of a retired key on %s: %q", sc.nodes[i].id, got)
	}
	for _, s := range survivors {
		s.alive(ctx, t)
	}

	// 4. A room's own key, retired when the grace of a room key rotation
	// ends.
	const ownRoom = "e2e-revoke-own"
	rk1Pub, rk1 := newKey(t)
	kid1 := sc.lockOwnKeys(1, ownRoom, rk1Pub)
	pub5, key5 := newKey(t)
	oldTok, _ := signToken(t, rk1, ownRoom, pub5, time.Now().Add(10*time.Minute), nil, kid1)
	sessions = sc.joinEverywhere(ctx, ownRoom, "old-room-key", key5, oldTok)
	rk2Pub, rk2 := newKey(t)
	rr := must(t, "RotateRoomKey", func(ctx context.Context) (*adminv1.RotateRoomKeyResponse, error) {
		return sc.rooms(2).RotateRoomKey(ctx, &adminv1.RotateRoomKeyRequest{Room: ownRoom, Pubkey: hex.EncodeToString(rk2Pub), Grace: durationpb.New(3 * time.Second)})
	})
	sc.waitAppliedEverywhere(rr.GetRaftIndex())
	retireAt := sc.roomKeyRetireAfter(0, ownRoom, kid1)
	pub6, key6 := newKey(t)
	newTok, _ := signToken(t, rk2, ownRoom, pub6, time.Now().Add(10*time.Minute), nil, rr.GetKid())
	survivors = sc.joinEverywhere(ctx, ownRoom, "new-room-key", key6, newTok)
	if time.Now().Before(retireAt) {
		for _, s := range sessions {
			if !s.open() {
				t.Errorf("%s was closed during its key's grace", s.name)
			}
		}
	}
	worst = max(worst, sc.expectRevoked(ctx, "room key grace ended", sessions, retireAt, retireAt))
	for i := range sc.nodes {
		sc.expectRefusedAny(ctx, i, ownRoom, "token of a retired room key", key5, oldTok, retiredReasons())
	}
	for _, s := range survivors {
		s.alive(ctx, t)
	}
	t.Logf("revoke → last session closed, worst of the four: %s", worst.Round(time.Millisecond))

	// 5. An operator token revoked by its jti is refused on every node's
	// gRPC door within the same bound (the page's expiry-only model does
	// not cover operators either).
	jwt, jti := sc.mintOperator("e2e-revoked-operator", []string{"cluster.read"}, 10*time.Minute)
	conns := make([]*grpc.ClientConn, len(sc.nodes))
	for i := range sc.nodes {
		conns[i] = sc.adminConn(i, jwt)
		if _, err := rpc(func(ctx context.Context) (*adminv1.GetStatusResponse, error) {
			return adminv1.NewClusterServiceClient(conns[i]).GetStatus(ctx, &adminv1.GetStatusRequest{})
		}); err != nil {
			t.Fatalf("operator token before revocation on %s: %v", sc.nodes[i].id, err)
		}
	}
	done, _ = sc.revoke(1, &adminv1.RevokeRequest{TokenId: jti})
	for i := range sc.nodes {
		var last error
		sc.eventually("the operator revocation on "+sc.nodes[i].id, func() bool {
			_, last = adminv1.NewClusterServiceClient(conns[i]).GetStatus(ctx, &adminv1.GetStatusRequest{})
			st := status.Convert(last)
			return st.Code() == codes.Unauthenticated && st.Message() == "auth: "+token.ReasonRevoked
		}, func() string { return fmt.Sprint(last) })
		if d := time.Since(done); d > revokeBound {
			t.Errorf("operator token still accepted on %s %s after the revocation", sc.nodes[i].id, d.Round(time.Millisecond))
		}
	}
}

// roomKeyRetireAfter answers when room's key kid stops verifying, as node
// i describes it.
func (sc *secCluster) roomKeyRetireAfter(i int, room, kid string) time.Time {
	sc.t.Helper()
	d := must(sc.t, "DescribeRoom", func(ctx context.Context) (*adminv1.DescribeRoomResponse, error) {
		return sc.rooms(i).DescribeRoom(ctx, &adminv1.DescribeRoomRequest{Room: room})
	})
	for _, k := range d.GetKeys() {
		if k.GetKid() == kid && k.GetRetireAfter() != nil {
			return k.GetRetireAfter().AsTime()
		}
	}
	sc.t.Fatalf("room %s: key %s has no retire_after after the rotation: %v", room, kid, d.GetKeys())
	return time.Time{}
}
