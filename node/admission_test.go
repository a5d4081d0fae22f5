package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// securityEnv is one running node with an operator holding every
// capability, for admission and revocation tests.
type securityEnv struct {
	t    *testing.T
	n    *Node
	ctx  context.Context
	room adminv1.RoomServiceClient
	tok  adminv1.TokenServiceClient
}

func newSecurityEnv(t *testing.T) *securityEnv {
	t.Helper()
	n := startNode(t, testConfig(t.TempDir()))
	conn := operatorConn(t, n)
	jwt, _, err := mintOperatorToken(n.Store(), nil, "sec", []string{"room.admin", "token.mint", "policy.admin", "cluster.admin"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &securityEnv{t: t, n: n, ctx: withToken(ctx, jwt),
		room: adminv1.NewRoomServiceClient(conn), tok: adminv1.NewTokenServiceClient(conn)}
}

// lockOwnKeys gives room its own key and locks it to it.
func (e *securityEnv) lockOwnKeys(room string) ed25519.PrivateKey {
	e.t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.room.SetRoomKey(e.ctx, &adminv1.SetRoomKeyRequest{Room: room, Pubkey: hex.EncodeToString(pub)}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.room.LockRoom(e.ctx, &adminv1.LockRoomRequest{Room: room, Mode: "own-keys"}); err != nil {
		e.t.Fatal(err)
	}
	return priv
}

func (e *securityEnv) url(room string) string { return "ws://" + e.n.PublicAddr() + "/ws/" + room }

func (e *securityEnv) dial(room string, key ed25519.PrivateKey, tok *token.RoomToken) (*client.Conn, error) {
	opts := client.Options{Key: key}
	if tok != nil {
		b, err := json.Marshal(tok)
		if err != nil {
			e.t.Fatal(err)
		}
		opts.Token = b
	}
	return client.Dial(e.ctx, e.url(room), opts)
}

// refused asserts a hello refused with "auth: <reason>" and close 1008.
func (e *securityEnv) refused(room string, key ed25519.PrivateKey, tok *token.RoomToken, reason string) {
	e.t.Helper()
	c, err := e.dial(room, key, tok)
	if err == nil {
		c.Close()
		e.t.Fatalf("joined %s, want refusal %q", room, reason)
	}
	var he *client.HelloError
	if !errors.As(err, &he) || he.Msg != "auth: "+reason {
		e.t.Fatalf("join %s: %v, want auth: %s", room, err, reason)
	}
	if code, _, ok := client.CloseError(err); !ok || code != 1008 {
		e.t.Fatalf("close code %d (%v), want 1008", code, err)
	}
}

// closedWith waits for the session to end with code and reason.
func closedWith(t *testing.T, c *client.Conn, code int, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := c.Next(ctx)
		if err == nil {
			continue
		}
		got, text, ok := client.CloseError(err)
		if !ok || got != code || text != reason {
			t.Fatalf("session ended with %v (code %d %q), want %d %q", err, got, text, code, reason)
		}
		return
	}
}

func newPeer(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(roomKey ed25519.PrivateKey, room string, peer ed25519.PrivateKey, ttl time.Duration, caps ...string) *token.RoomToken {
	t := token.SignRoom(roomKey, room, peer.Public().(ed25519.PublicKey), uint64(time.Now().Add(ttl).Unix()), caps, "")
	return &t
}

// TestLockedRoomAdmission: every refusal reason of SPEC section 3, then a
// least-privilege token joins and its classes gate commands.
func TestLockedRoomAdmission(t *testing.T) {
	e := newSecurityEnv(t)
	roomKey := e.lockOwnKeys("vault")
	peer, other := newPeer(t), newPeer(t)

	e.refused("vault", peer, nil, token.ReasonRoomLocked)
	e.refused("vault", peer, sign(roomKey, "vault", other, time.Hour), token.ReasonPeerMismatch)
	e.refused("vault", peer, sign(roomKey, "vault", peer, -time.Second), token.ReasonExpired)
	e.refused("vault", peer, sign(roomKey, "elsewhere", peer, time.Hour), token.ReasonBadSignature)
	_, stranger, _ := ed25519.GenerateKey(nil)
	e.refused("vault", peer, sign(stranger, "vault", peer, time.Hour), token.ReasonBadSignature)
	unknown := sign(roomKey, "vault", peer, time.Hour)
	unknown.Kid = "room-000000000000"
	e.refused("vault", peer, unknown, token.ReasonUnknownKey)
	bad := sign(roomKey, "vault", peer, time.Hour)
	bad.Sig = "zz"
	e.refused("vault", peer, bad, token.MalformedField("sig"))

	// With the kid, and without: both verify; policy.admin only.
	good := sign(roomKey, "vault", peer, time.Hour, "policy.admin")
	good.Kid = keyring.RoomKeyID(roomKey.Public().(ed25519.PublicKey))
	c, err := e.dial("vault", peer, good)
	if err != nil {
		t.Fatalf("join with a valid token: %v", err)
	}
	defer c.Close()
	for cmd, want := range map[string]string{
		`{"type":"get-policy","id":"1"}`:    "get-policy-result",
		`{"type":"describe-room","id":"2"}`: "reject.control_plane_forbidden: command=describe-room requires=room.admin",
	} {
		if err := c.SendRaw(e.ctx, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		m, err := c.Next(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Type, Msg string }
		if err := json.Unmarshal(m.Raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Type != want && got.Msg != want {
			t.Errorf("%s answered %s, want %s", cmd, m.Raw, want)
		}
	}
}

// TestRevocationClosesSessions: revoking by token id, by peer, and
// retiring the verifying key each close the affected sessions with 4003
// and nothing else; a revoked token cannot join again; locking a room
// closes its tokenless sessions with 1008.
func TestRevocationClosesSessions(t *testing.T) {
	e := newSecurityEnv(t)
	roomKey := e.lockOwnKeys("r1")
	a, b, c := newPeer(t), newPeer(t), newPeer(t)
	ta, tb := sign(roomKey, "r1", a, time.Hour), sign(roomKey, "r1", b, time.Hour)
	sa, err := e.dial("r1", a, ta)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := e.dial("r1", b, tb)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	if _, err := e.tok.Revoke(e.ctx, &adminv1.RevokeRequest{TokenId: ta.ID()}); err != nil {
		t.Fatal(err)
	}
	closedWith(t, sa, 4003, "token revoked")
	e.refused("r1", a, ta, token.ReasonRevoked)

	if _, err := e.tok.Revoke(e.ctx, &adminv1.RevokeRequest{Room: "r1", PeerPubkey: hex.EncodeToString(b.Public().(ed25519.PublicKey))}); err != nil {
		t.Fatal(err)
	}
	closedWith(t, sb, 4003, "token revoked")
	e.refused("r1", b, sign(roomKey, "r1", b, time.Hour), token.ReasonRevoked)

	// Rotating the room key with no grace retires the old one at once.
	sc, err := e.dial("r1", c, sign(roomKey, "r1", c, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	newPub, _, _ := ed25519.GenerateKey(nil)
	if _, err := e.room.RotateRoomKey(e.ctx, &adminv1.RotateRoomKeyRequest{Room: "r1", Pubkey: hex.EncodeToString(newPub), Grace: durationpb.New(0)}); err != nil {
		t.Fatal(err)
	}
	closedWith(t, sc, 4003, "token revoked")

	// An open room's tokenless session closes when the room is locked.
	open, err := e.dial("r2", newPeer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	e.lockOwnKeys("r2")
	closedWith(t, open, 1008, "auth: "+token.ReasonRoomLocked)
}

// TestClusterLockedRoomTokenFromTheKeyring: a room locked to the cluster
// keyring admits a token minted by TokenService, and its expiry closes the
// session with 4002.
func TestClusterLockedRoomTokenFromTheKeyring(t *testing.T) {
	e := newSecurityEnv(t)
	if _, err := e.room.LockRoom(e.ctx, &adminv1.LockRoomRequest{Room: "cl", Mode: "cluster"}); err != nil {
		t.Fatal(err)
	}
	peer := newPeer(t)
	resp, err := e.tok.MintRoomToken(e.ctx, &adminv1.MintRoomTokenRequest{Room: "cl", PeerPubkey: hex.EncodeToString(peer.Public().(ed25519.PublicKey)),
		Caps: []string{"read:**"}, Ttl: durationpb.New(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"peer_pubkey": resp.Token.PeerPubkey, "expiry": resp.Token.Expiry, "caps": resp.Token.Caps, "sig": resp.Token.Sig, "kid": resp.Token.Kid})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(e.ctx, e.url("cl"), client.Options{Key: peer, Token: raw})
	if err != nil {
		t.Fatalf("join with a minted token: %v", err)
	}
	defer c.Close()
	closedWith(t, c, 4002, "token expired")
	c2, err := client.Dial(e.ctx, e.url("cl"), client.Options{Key: peer, Token: raw})
	if err == nil {
		c2.Close()
		t.Fatal("an expired token joined")
	}
}

// TestKeyRotationKeepsSessionsAndRetirementClosesThem: rotating the
// keyring's room-token key with a grace keeps sessions and lets tokens of
// the old key join; retiring the old key closes exactly its sessions with
// 4003, and its tokens are refused from then on.
func TestKeyRotationKeepsSessionsAndRetirementClosesThem(t *testing.T) {
	e := newSecurityEnv(t)
	keys := adminv1.NewKeyServiceClient(operatorConn(t, e.n))
	if _, err := e.room.LockRoom(e.ctx, &adminv1.LockRoomRequest{Room: "kr", Mode: "cluster"}); err != nil {
		t.Fatal(err)
	}
	mint := func(peer ed25519.PrivateKey) json.RawMessage {
		t.Helper()
		resp, err := e.tok.MintRoomToken(e.ctx, &adminv1.MintRoomTokenRequest{Room: "kr", PeerPubkey: hex.EncodeToString(peer.Public().(ed25519.PublicKey)), Ttl: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		tk := resp.GetToken()
		raw, err := json.Marshal(token.RoomToken{PeerPubkey: tk.GetPeerPubkey(), Expiry: tk.GetExpiry(), Caps: tk.GetCaps(), Sig: tk.GetSig(), Kid: tk.GetKid()})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	oldPeer, laterPeer, newPeerKey := newPeer(t), newPeer(t), newPeer(t)
	oldTok, laterTok := mint(oldPeer), mint(laterPeer)
	var old token.RoomToken
	if err := json.Unmarshal(oldTok, &old); err != nil {
		t.Fatal(err)
	}
	before, err := client.Dial(e.ctx, e.url("kr"), client.Options{Key: oldPeer, Token: oldTok})
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	if _, err := keys.RotateKey(e.ctx, &adminv1.RotateKeyRequest{Purpose: "room-token", Grace: durationpb.New(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// In its grace the old key still admits, and the session stays.
	later, err := client.Dial(e.ctx, e.url("kr"), client.Options{Key: laterPeer, Token: laterTok})
	if err != nil {
		t.Fatalf("a token of the superseded key was refused in its grace: %v", err)
	}
	defer later.Close()
	fresh, err := client.Dial(e.ctx, e.url("kr"), client.Options{Key: newPeerKey, Token: mint(newPeerKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	stillOpen(t, before)

	if _, err := keys.RetireKey(e.ctx, &adminv1.RetireKeyRequest{Kid: old.Kid}); err != nil {
		t.Fatal(err)
	}
	closedWith(t, before, 4003, "token revoked")
	closedWith(t, later, 4003, "token revoked")
	stillOpen(t, fresh)
	e.refused("kr", oldPeer, &old, token.ReasonRevoked)
}

// stillOpen asserts the session answers a command (its deny: the token
// holds no class), skipping peer events: the session is open.
func stillOpen(t *testing.T, c *client.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SendRaw(ctx, []byte(`{"type":"get-policy"}`)); err != nil {
		t.Fatalf("session closed: %v", err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("session closed: %v", err)
		}
		if m.Type == "error" {
			return
		}
	}
}

// TestRoomKeyGraceEndClosesSessions: after a room key rotation with a
// grace, the old key's sessions stay open through the grace and close with
// 4003 when it ends, by the clock alone (no event is applied then).
func TestRoomKeyGraceEndClosesSessions(t *testing.T) {
	e := newSecurityEnv(t)
	roomKey := e.lockOwnKeys("gr")
	peer := newPeer(t)
	c, err := e.dial("gr", peer, sign(roomKey, "gr", peer, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	newPub, _, _ := ed25519.GenerateKey(nil)
	const grace = 1500 * time.Millisecond
	rotated := time.Now()
	if _, err := e.room.RotateRoomKey(e.ctx, &adminv1.RotateRoomKeyRequest{Room: "gr", Pubkey: hex.EncodeToString(newPub), Grace: durationpb.New(grace)}); err != nil {
		t.Fatal(err)
	}
	stillOpen(t, c)
	closedWith(t, c, 4003, "token revoked")
	t.Logf("closed %s after the rotation (grace %s)", time.Since(rotated).Round(time.Millisecond), grace)
	if time.Since(rotated) < grace {
		t.Fatalf("closed %s after the rotation, inside the %s grace", time.Since(rotated), grace)
	}
}
