package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// waitFor polls cond until it holds or ctx ends. Rotation has no event a
// test can subscribe to from outside the node; the state is what counts.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func keysOf(keys []*statev1.Key, p statev1.KeyPurpose) []*statev1.Key {
	var out []*statev1.Key
	for _, k := range keys {
		if k.GetPurpose() == p {
			out = append(out, k)
		}
	}
	return out
}

func readToken(t *testing.T, n *Node) string {
	t.Helper()
	raw, err := os.ReadFile(n.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// TestAutomaticRotation: a single-node cluster with a 1 s interval rotates
// both purposes by itself, through keys.rotate (audited as the node,
// transport internal, with the kids), counted by the rotation metric; the
// tokens minted before keep working through the grace.
func TestAutomaticRotation(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.KeyRotationInterval = time.Second
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	boot := readToken(t, n)
	conn := operatorConn(t, n)
	// A room token minted before any rotation, with the first room-token key.
	peer, _, _ := ed25519.GenerateKey(nil)
	minted, err := adminv1.NewTokenServiceClient(conn).MintRoomToken(withToken(ctx, boot),
		&adminv1.MintRoomTokenRequest{Room: "lobby", PeerPubkey: hex.EncodeToString(peer), Caps: []string{"room.admin"}})
	if err != nil {
		t.Fatalf("MintRoomToken: %v", err)
	}
	first := map[statev1.KeyPurpose]string{}
	for _, p := range rotatedPurposes {
		ks := keysOf(n.Store().Keys(), p)
		if len(ks) != 1 {
			t.Fatalf("%s keys at start: %d", keyring.PurposeName(p), len(ks))
		}
		first[p] = ks[0].GetKid()
	}

	waitFor(t, ctx, "both purposes rotated", func() bool {
		keys := n.Store().Keys()
		return len(keysOf(keys, rotatedPurposes[0])) >= 2 && len(keysOf(keys, rotatedPurposes[1])) >= 2
	})
	now := time.Now()
	keys := n.Store().Keys()
	for _, p := range rotatedPurposes {
		for _, k := range keysOf(keys, p) {
			if k.GetKid() == first[p] {
				if st := keyring.State(k, now); st != statev1.KeyState_KEY_STATE_VERIFY_ONLY {
					t.Errorf("first %s key is %s after rotation, want verify-only", keyring.PurposeName(p), keyring.StateName(st))
				}
				if grace := time.UnixMilli(k.GetRetireAfterUnixMs()).Sub(time.UnixMilli(k.GetSupersededUnixMs())); grace != DefaultKeyRotationGrace {
					t.Errorf("first %s key's grace is %s", keyring.PurposeName(p), grace)
				}
			}
		}
		if kid, _, err := keyring.Signer(keys, p, now); err != nil || kid == first[p] {
			t.Errorf("%s signer after rotation: %q, %v", keyring.PurposeName(p), kid, err)
		}
	}

	// The bootstrap operator token (old operator key) still authenticates.
	if _, err := adminv1.NewClusterServiceClient(conn).GetStatus(withToken(ctx, boot), &adminv1.GetStatusRequest{}); err != nil {
		t.Fatalf("bootstrap token after rotation: %v", err)
	}
	// The room token signed before still verifies under the cluster keyring.
	tok := token.RoomToken{PeerPubkey: minted.GetToken().GetPeerPubkey(), Expiry: minted.GetToken().GetExpiry(),
		Caps: minted.GetToken().GetCaps(), Sig: minted.GetToken().GetSig(), Kid: minted.GetToken().GetKid()}
	if tok.Kid != first[statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN] {
		t.Fatalf("room token minted with %s, want the first key", tok.Kid)
	}
	if err := token.VerifyRoom(&tok, "lobby", peer, keyring.ClusterRoomVerifyKeys(n.Store().Keys(), tok.Kid, time.Now()), time.Now()); err != nil {
		t.Fatalf("room token minted before rotation: %v", err)
	}

	// Audited as the node, through keys.rotate, with the kids.
	events, err := adminv1.NewAuditServiceClient(conn).ListEvents(withToken(ctx, boot), &adminv1.ListEventsRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	supersededFirst := map[string]bool{}
	for _, e := range events.GetEvents() {
		if e.GetCommand() != "keys.rotate" {
			continue
		}
		if e.GetActor() != "node:"+n.NodeID() || e.GetTransport() != "internal" || e.GetDecision() != "allow" ||
			e.GetRequires() != "cluster.admin" || e.GetRaftIndex() == 0 || len(e.GetKeyIds()) < 2 {
			t.Errorf("automatic rotation event = %v", e)
		}
		for _, kid := range e.GetKeyIds()[1:] {
			supersededFirst[kid] = true
		}
	}
	for p, kid := range first {
		if !supersededFirst[kid] {
			t.Errorf("no keys.rotate event names the first %s key %s as superseded", keyring.PurposeName(p), kid)
		}
	}

	// The rotation metric counted them.
	resp, err := http.Get("http://" + n.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, p := range []string{"room-token", "operator"} {
		m := regexp.MustCompile(`nodalmerge_keyring_rotations_total\{purpose="` + p + `"\} (\d+)`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no rotation counter for %s", p)
		}
		if c, _ := strconv.Atoi(string(m[1])); c < 1 {
			t.Errorf("rotation counter for %s is %d", p, c)
		}
	}
}

// TestAutomaticRotationOffByDefault: without the flag nothing rotates.
func TestAutomaticRotationOffByDefault(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	if n.rotator.Load() != nil {
		t.Fatal("a rotator runs without --key-rotation-interval")
	}
}

// TestAutoRotatorDue: the schedule rules, on a real keyring.
func TestAutoRotatorDue(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a := &autoRotator{interval: time.Hour}
	op := statev1.KeyPurpose_KEY_PURPOSE_OPERATOR
	if due := a.dueAt(nil, op, t0); !due.Equal(t0) {
		t.Fatalf("a purpose without keys is due %s, want now", due)
	}
	k, err := keyring.Generate(op, t0)
	if err != nil {
		t.Fatal(err)
	}
	if due := a.dueAt([]*statev1.Key{k}, op, t0.Add(time.Minute)); !due.Equal(t0.Add(time.Hour)) {
		t.Fatalf("due %s, want an interval after creation", due)
	}
	// A prepublished successor postpones the next rotation to its own age.
	next, _ := keyring.Generate(op, t0.Add(2*time.Hour))
	next.State = statev1.KeyState_KEY_STATE_PREPUBLISHED
	next.ActivateUnixMs = t0.Add(3 * time.Hour).UnixMilli()
	if due := a.dueAt([]*statev1.Key{k, next}, op, t0.Add(2*time.Hour)); !due.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("due %s with a pending successor", due)
	}
}

func TestKeyRotationFlagsValidated(t *testing.T) {
	for _, tc := range []struct {
		interval, prepublish, grace time.Duration
		flag                        string
	}{
		{-time.Second, 0, 0, "--key-rotation-interval"},
		{time.Millisecond, 0, 0, "--key-rotation-interval"},
		{time.Hour, time.Hour, 0, "--key-rotation-prepublish"},
		{time.Hour, -time.Second, 0, "--key-rotation-prepublish"},
		{time.Hour, 0, -time.Second, "--key-rotation-grace"},
		{time.Hour, 0, 400 * 24 * time.Hour, "--key-rotation-grace"},
	} {
		cfg := testConfig("")
		cfg.KeyRotationInterval, cfg.KeyRotationPrepublish, cfg.KeyRotationGrace = tc.interval, tc.prepublish, tc.grace
		cfg.applyDefaults()
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%+v: %v; want an error naming %s", tc, err, tc.flag)
		}
	}
	cfg := testConfig("")
	cfg.KeyRotationInterval, cfg.KeyRotationPrepublish = time.Hour, time.Minute
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil || cfg.KeyRotationGrace != DefaultKeyRotationGrace {
		t.Fatalf("valid rotation flags: %v (grace %s)", err, cfg.KeyRotationGrace)
	}
}
