package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// TestChecklist2_LockedRoomHandshakeWithLeastPrivilegeToken locks one room
// to its own keys and one to the cluster keyring. On each of the three
// nodes a token holding no capability class (own-keys) and one holding
// only read:/write: grants (cluster) are admitted, and the grants limit
// what the session may write and receive; no token, an expired token, a
// token for another peer, a bad signature, an unknown key id and a
// malformed field are refused with their exact reason and close 1008.
func TestChecklist2_LockedRoomHandshakeWithLeastPrivilegeToken(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const own, clus = "e2e-locked-own", "e2e-locked-cluster"
	roomPub, roomKey := newKey(t)
	kid := sc.lockOwnKeys(0, own, roomPub)
	sc.lock(1, clus, "cluster")
	later := time.Now().Add(10 * time.Minute)
	grants := []string{"read:pub/**", "write:pub/**"}

	// Admission with least privilege on every node.
	for i := range sc.nodes {
		pub, key := newKey(t)
		tok, _ := signToken(t, roomKey, own, pub, later, nil, kid)
		s := sc.mustJoin(ctx, i, own, fmt.Sprintf("no-class-%d", i), key, tok)
		// Holding no class, it may do nothing on the control plane.
		m, err := s.reply(ctx, map[string]any{"type": "describe-room"}, "least")
		if err != nil {
			t.Fatalf("describe-room from a classless session on %s: %v", sc.nodes[i].id, err)
		}
		wantDenyFrame(t, m, "describe-room", "room.admin")
		s.alive(ctx, t)

		pub2, key2 := newKey(t)
		mt := sc.mintRoomToken(i, clus, pub2, grants, 10*time.Minute)
		sc.mustJoin(ctx, i, clus, fmt.Sprintf("grants-only-%d", i), key2, mt.raw).alive(ctx, t)
	}

	// Path grants: a reader limited to pub/** gets only pub/** in its
	// catch-up and in relays, and cannot write outside it.
	const at = 2
	wPub, wKey := newKey(t)
	w := client.NewAuthor(wKey)
	ws := sc.mustJoin(ctx, at, clus, "writer", wKey, sc.mintRoomToken(at, clus, wPub, nil, 10*time.Minute).raw)
	pubA, ack := ws.write(ctx, t, w, "pub/a")
	_, ack2 := ws.write(ctx, t, w, "priv/b")
	if ack.Accepted != 1 || ack2.Accepted != 1 {
		t.Fatalf("an unlimited writer's acks = %+v, %+v; want each accepted", ack, ack2)
	}
	rPub, rKey := newKey(t)
	r := client.NewAuthor(rKey)
	rs := sc.mustJoin(ctx, at, clus, "reader", rKey, sc.mintRoomToken(at, clus, rPub, grants, 10*time.Minute).raw)
	catchUp := rs.await(ctx, t, "pack")
	if got := packIDs(t, catchUp); !slices.Equal(got, []history.ID{pubA}) {
		t.Errorf("catch-up under read:pub/** holds %v, want only pub/a %v", got, pubA)
	}
	p, _ := catchUp.AsPack()
	nodes, _ := client.PackNodes(p)
	if err := r.Observe(nodes...); err != nil {
		t.Fatal(err)
	}
	if _, ack := rs.write(ctx, t, r, "pub/c"); ack.Accepted != 1 || ack.Rejected != 0 {
		t.Errorf("write inside write:pub/** acked %+v, want accepted", ack)
	}
	_, ack = rs.write(ctx, t, r, "priv/d")
	if ack.Accepted != 0 || ack.Rejected != 1 || len(ack.Rejections) != 1 || ack.Rejections[0].Reason != "token grants no write to priv/d" {
		t.Errorf("write outside write:pub/** acked %+v, want one rejection %q", ack, "token grants no write to priv/d")
	}
	ws.write(ctx, t, w, "priv/e")
	pubF, _ := ws.write(ctx, t, w, "pub/f")
	if got := packIDs(t, rs.await(ctx, t, "pack")); !slices.Equal(got, []history.ID{pubF}) {
		t.Errorf("relay under read:pub/** delivered %v, want only pub/f %v (priv/e was sent first)", got, pubF)
	}

	// Refusals, on every node, with the exact reason and 1008.
	pub, key := newKey(t)
	otherPub, _ := newKey(t)
	_, strangerKey := newKey(t)
	good, goodTok := signToken(t, roomKey, own, pub, later, nil, kid)
	expired, _ := signToken(t, roomKey, own, pub, time.Now().Add(-time.Minute), nil, kid)
	forOther, _ := signToken(t, roomKey, own, otherPub, later, nil, kid)
	badSig := goodTok
	badSig.Sig = flipHex(badSig.Sig)
	unknownKid, _ := signToken(t, roomKey, own, pub, later, nil, "rk-000000000000")
	stranger, _ := signToken(t, strangerKey, own, pub, later, nil, "")
	malformed := json.RawMessage(strings.Replace(string(good), goodTok.Sig, "zz"+goodTok.Sig[2:], 1))

	mintedExpired := sc.mintRoomToken(0, clus, pub, nil, time.Second)
	mintedForOther := sc.mintRoomToken(0, clus, otherPub, nil, 10*time.Minute)
	mintedBadSig := sc.mintRoomToken(0, clus, pub, nil, 10*time.Minute)
	mintedBadSig.tok.Sig = flipHex(mintedBadSig.tok.Sig)
	otherRoom := sc.mintRoomToken(0, "e2e-some-other-room", pub, nil, 10*time.Minute)
	sc.eventually("the 1 s token to expire", func() bool {
		return token.Expired(mintedExpired.tok.Expiry, time.Now())
	}, func() string { return "" })

	cases := []struct {
		name, room string
		tok        json.RawMessage
		reason     string
	}{
		{"own-keys: no token", own, nil, token.ReasonRoomLocked},
		{"own-keys: expired", own, expired, token.ReasonExpired},
		{"own-keys: wrong peer", own, forOther, token.ReasonPeerMismatch},
		{"own-keys: bad signature", own, mustJSON(t, badSig), token.ReasonBadSignature},
		{"own-keys: unknown kid", own, unknownKid, token.ReasonUnknownKey},
		{"own-keys: another key's signature", own, stranger, token.ReasonBadSignature},
		{"own-keys: malformed sig", own, malformed, token.MalformedField(token.FieldSig)},
		{"cluster: no token", clus, nil, token.ReasonRoomLocked},
		{"cluster: expired", clus, mintedExpired.raw, token.ReasonExpired},
		{"cluster: wrong peer", clus, mintedForOther.raw, token.ReasonPeerMismatch},
		{"cluster: bad signature", clus, mustJSON(t, mintedBadSig.tok), token.ReasonBadSignature},
		{"cluster: token for another room", clus, otherRoom.raw, token.ReasonBadSignature},
		{"cluster: a room key's kid", clus, good, token.ReasonUnknownKey},
	}
	before := make([]string, len(sc.nodes))
	for i := range sc.nodes {
		before[i] = sc.scrape(i)
		for _, tc := range cases {
			sc.expectRefused(ctx, i, tc.room, tc.name, key, tc.tok, tc.reason)
		}
		// The good token does get in, so the refusals above are the
		// defects', not the room's.
		sc.mustJoin(ctx, i, own, "good", key, good).alive(ctx, t)
	}
	// Refusals are counted by reason on the node that refused them.
	for i := range sc.nodes {
		after := sc.scrape(i)
		for _, reason := range []string{token.ReasonExpired, token.ReasonBadSignature, token.ReasonPeerMismatch, token.ReasonUnknownKey} {
			series := fmt.Sprintf("nodalmerge_auth_failures_total{reason=%q}", reason)
			b, _ := metricValue(before[i], series)
			a, ok := metricValue(after, series)
			if !ok || a <= b {
				t.Errorf("%s: %s went %v → %v (present %v), want it to count the refusals", sc.nodes[i].id, series, b, a, ok)
			}
		}
	}
}

// wantDenyFrame checks a WebSocket answer is exactly the SPEC deny.
func wantDenyFrame(t *testing.T, m client.Message, command, capability string) {
	t.Helper()
	want := "reject.control_plane_forbidden: command=" + command + " requires=" + capability
	e, err := m.AsError()
	if err != nil || e.Msg != want {
		t.Errorf("%s without %s answered %s, want error %q", command, capability, m.Raw, want)
	}
}

// flipHex changes the first hex digit of s, keeping it valid hex.
func flipHex(s string) string {
	c := byte('0')
	if s[0] == '0' {
		c = '1'
	}
	return string(c) + s[1:]
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChecklist5_TokenExpiryAndReconnectRefresh: a session whose token
// expires 2-3 s after it joins is closed with 4002 "token expired" at the
// expiry, counted by nodalmerge_token_expired_disconnects_total on that
// node only; reconnecting with the expired token is refused ("auth: token
// has expired"), and with a fresh token the client catches up from its
// frontier with exactly what it missed.
func TestChecklist5_TokenExpiryAndReconnectRefresh(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room, at = "e2e-expiry", 1
	roomPub, roomKey := newKey(t)
	kid := sc.lockOwnKeys(0, room, roomPub)
	const series = "nodalmerge_token_expired_disconnects_total"
	before := make([]float64, len(sc.nodes))
	for i := range sc.nodes {
		before[i], _ = metricValue(sc.scrape(i), series)
	}

	aPub, aKey := newKey(t)
	a := client.NewAuthor(aKey)
	bPub, bKey := newKey(t)
	b := client.NewAuthor(bKey)
	expiry := time.Now().Add(3 * time.Second).Truncate(time.Second)
	short, _ := signToken(t, roomKey, room, aPub, expiry, nil, kid)
	long, _ := signToken(t, roomKey, room, bPub, time.Now().Add(10*time.Minute), nil, kid)

	sa := sc.mustJoin(ctx, at, room, "short-lived", aKey, short)
	sa.write(ctx, t, a, "doc/a1")
	sa.write(ctx, t, a, "doc/a2")
	sb := sc.mustJoin(ctx, at, room, "long-lived", bKey, long)
	p, _ := sb.await(ctx, t, "pack").AsPack()
	nodes, _ := client.PackNodes(p)
	if err := b.Observe(nodes...); err != nil {
		t.Fatal(err)
	}

	wctx, wcancel := context.WithDeadline(ctx, expiry.Add(5*time.Second))
	code, text, closedAt, err := sa.closed(wctx)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	if code != closeTokenExpired || text != "token expired" {
		t.Errorf("expiring session closed with %d %q, want %d %q", code, text, closeTokenExpired, "token expired")
	}
	late := closedAt.Sub(expiry)
	t.Logf("token expiry → close 4002 seen by the client: %s", late.Round(time.Millisecond))
	if late < -100*time.Millisecond || late > 2*time.Second {
		t.Errorf("closed %s from the expiry, want at the expiry (within 2 s after)", late)
	}
	if !sb.open() {
		t.Error("the session with a long token was closed too")
	}
	for i := range sc.nodes {
		got, ok := metricValue(sc.scrape(i), series)
		want := before[i]
		if i == at {
			want++
		}
		if !ok || got != want {
			t.Errorf("%s %s = %v (present %v), want %v", sc.nodes[i].id, series, got, ok, want)
		}
	}

	// The room goes on without A.
	b1, _ := sb.write(ctx, t, b, "doc/b1")
	b2, _ := sb.write(ctx, t, b, "doc/b2")

	sc.expectRefused(ctx, at, room, "expired token again", aKey, short, token.ReasonExpired)
	fresh, _ := signToken(t, roomKey, room, aPub, time.Now().Add(10*time.Minute), nil, kid)
	again := sc.mustJoin(ctx, at, room, "refreshed", aKey, fresh, a.Frontier()...)
	if got, want := packIDs(t, again.await(ctx, t, "pack")), sortedIDs(b1, b2); !slices.Equal(got, want) {
		t.Errorf("catch-up after refresh holds %v, want exactly what was missed %v", got, want)
	}
	again.alive(ctx, t)
}
