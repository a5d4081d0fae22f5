package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// TestRotationWithoutDowntime rotates the cluster's room-token key with a
// prepublish period and a grace. While the new key is prepublished the old
// one still signs; once it activates, new tokens carry its kid, tokens
// from before keep joining on every node until the grace ends, and the
// sessions opened before the rotation are never interrupted. The audit
// trail names both kids, and every node counts the rotation.
func TestRotationWithoutDowntime(t *testing.T) {
	sc := startSecCluster(t, secOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const room = "e2e-rotate"
	const prepublish, grace = 3 * time.Second, 6 * time.Second
	sc.lock(0, room, "cluster")
	const rotations = `nodalmerge_keyring_rotations_total{purpose="room-token"}`
	rotBefore := make([]float64, len(sc.nodes))
	for i := range sc.nodes {
		rotBefore[i], _ = metricValue(sc.scrape(i), rotations)
	}

	pubA, keyA := newKey(t)
	before := sc.mintRoomToken(0, room, pubA, nil, 10*time.Minute)
	k1 := before.tok.Kid
	if state := sc.keyState(0, k1); state != "active" {
		t.Fatalf("the signing kid %s is %q, want active", k1, state)
	}
	sessions := sc.joinEverywhere(ctx, room, "before", keyA, before.raw)

	rotStart := time.Now()
	rot := must(t, "RotateKey", func(ctx context.Context) (*adminv1.RotateKeyResponse, error) {
		return sc.keys(1).RotateKey(ctx, &adminv1.RotateKeyRequest{
			Purpose: "room-token", Prepublish: durationpb.New(prepublish), Grace: durationpb.New(grace),
		})
	})
	k2, activates := rot.GetKid(), rot.GetActivatesAt().AsTime()
	sc.waitAppliedEverywhere(rot.GetRaftIndex())

	// Prepublished: published everywhere, not yet signing.
	pubB, keyB := newKey(t)
	during := sc.mintRoomToken(2, room, pubB, nil, 10*time.Minute)
	if time.Now().Before(activates.Add(-500 * time.Millisecond)) {
		for i := range sc.nodes {
			if st := sc.keyState(i, k2); st != "prepublished" {
				t.Errorf("%s shows the new key %s as %q during its prepublish, want prepublished", sc.nodes[i].id, k2, st)
			}
		}
		if during.tok.Kid != k1 {
			t.Errorf("a token minted during the prepublish carries kid %s, want the old key %s", during.tok.Kid, k1)
		}
	} else {
		t.Logf("prepublish checks skipped: the machine was too slow to look inside the %s window", prepublish)
	}

	// Activation: new tokens carry the new kid; the old key verifies.
	pubC, keyC := newKey(t)
	var after mintedRoomToken
	sc.eventually("tokens signed by the new key", func() bool {
		after = sc.mintRoomToken(0, room, pubC, nil, 10*time.Minute)
		return after.tok.Kid == k2
	}, func() string { return after.tok.Kid })
	retireAt := sc.keyRetireAfter(0, k1)
	inGrace := 0
	if want := activates.Add(grace); retireAt.Sub(want).Abs() > time.Second {
		t.Errorf("old key %s retires at %v, want activation + grace = %v", k1, retireAt, want)
	}
	for i := range sc.nodes {
		if st := sc.keyState(i, k1); st != "verify-only" {
			t.Errorf("%s shows the old key %s as %q after activation, want verify-only", sc.nodes[i].id, k1, st)
		}
		if st := sc.keyState(i, k2); st != "active" {
			t.Errorf("%s shows the new key %s as %q after activation, want active", sc.nodes[i].id, k2, st)
		}
		sc.mustJoin(ctx, i, room, "new-token", keyC, after.raw).alive(ctx, t)
		if time.Now().Before(retireAt) {
			sc.mustJoin(ctx, i, room, "old-token-in-grace", keyA, before.raw).alive(ctx, t)
			sc.mustJoin(ctx, i, room, "prepublish-token-in-grace", keyB, during.raw).alive(ctx, t)
			inGrace++
		}
	}
	if inGrace == 0 {
		t.Errorf("no node could be tried within the %s grace: the old tokens' validity during it is unchecked", grace)
	}
	for _, s := range sessions {
		if time.Now().Before(retireAt) {
			s.alive(ctx, t)
		}
	}
	t.Logf("rotation → sessions from before still served %s later; old tokens joined within the grace on %d of %d nodes",
		time.Since(rotStart).Round(time.Millisecond), inGrace, len(sc.nodes))

	// After the grace the old key's tokens are refused; the new ones join.
	sc.eventually("the old key's grace to end", func() bool { return time.Now().After(retireAt) }, func() string { return "" })
	for i := range sc.nodes {
		sc.expectRefusedAny(ctx, i, room, "old token after grace", keyA, before.raw, retiredReasons())
		sc.mustJoin(ctx, i, room, "new-token-after-grace", keyC, after.raw).alive(ctx, t)
	}

	// Audit: the rotation names the new kid and the one it supersedes.
	var found []string
	for i := range sc.nodes {
		for _, ev := range sc.auditEvents(i) {
			if ev.GetCommand() != "keys.rotate" || ev.GetDecision() != "allow" {
				continue
			}
			ids := keyIDs(t, ev)
			found = append(found, fmt.Sprintf("%s:%v", sc.nodes[i].id, ids))
			if !slices.Contains(ids, k2) || !slices.Contains(ids, k1) {
				t.Errorf("%s audit event for keys.rotate has key_ids %v, want %s (new) and %s (superseded)", sc.nodes[i].id, ids, k2, k1)
			}
		}
	}
	if len(found) == 0 {
		t.Error("no node's audit trail holds the keys.rotate event")
	}
	t.Logf("keys.rotate audit events: %v", found)
	for i := range sc.nodes {
		if got, ok := metricValue(sc.scrape(i), rotations); !ok || got != rotBefore[i]+1 {
			t.Errorf("%s %s = %v (present %v), want %v", sc.nodes[i].id, rotations, got, ok, rotBefore[i]+1)
		}
	}
}

// keyIDs reads an audit event's key_ids by name, so that the suite builds
// against a proto that does not have the field yet (and fails saying so).
func keyIDs(t *testing.T, ev *adminv1.AuditEvent) []string {
	t.Helper()
	m := ev.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name("key_ids"))
	if fd == nil || !fd.IsList() {
		b, _ := protojson.Marshal(ev)
		t.Errorf("AuditEvent has no repeated key_ids field; event: %s", b)
		return nil
	}
	l := m.Get(fd).List()
	out := make([]string, l.Len())
	for i := range l.Len() {
		out[i] = l.Get(i).String()
	}
	return out
}

// keyInfo answers node i's own view (a stale read) of keyring key kid.
func (sc *secCluster) keyInfo(i int, kid string) *adminv1.KeyInfo {
	sc.t.Helper()
	resp := must(sc.t, "ListKeys on "+sc.nodes[i].id, func(ctx context.Context) (*adminv1.ListKeysResponse, error) {
		return sc.keys(i).ListKeys(staleRead(ctx), &adminv1.ListKeysRequest{Purpose: "room-token"})
	})
	for _, k := range resp.GetKeys() {
		if k.GetKid() == kid {
			return k
		}
	}
	sc.t.Fatalf("%s lists no room-token key %s", sc.nodes[i].id, kid)
	return nil
}

func (sc *secCluster) keyState(i int, kid string) string { return sc.keyInfo(i, kid).GetState() }

func (sc *secCluster) keyRetireAfter(i int, kid string) time.Time {
	sc.t.Helper()
	k := sc.keyInfo(i, kid)
	if k.GetRetireAfter() == nil {
		sc.t.Fatalf("key %s has no retire_after after being superseded", kid)
	}
	return k.GetRetireAfter().AsTime()
}
