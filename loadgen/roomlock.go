package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// lockModeOwnKeys is LockRoom's mode for rooms that admit tokens signed by
// their own keys (SPEC §4, RoomService.LockRoom).
const lockModeOwnKeys = "own-keys"

// lockedRoomRefusal is SPEC §3's answer to a hello without a token in a
// locked room (the dash is U+2014).
const lockedRoomRefusal = "auth: room is locked — include a capability token in hello"

// lockPollInterval paces awaitLocked's probes.
const lockPollInterval = 20 * time.Millisecond

// tokenLifetime is how long the room tokens the tool signs stay valid. A
// benchmark measures admission and revocation, not expiry: a day outlasts
// any run, so no session is closed with 4002 in the middle of one.
const tokenLifetime = 24 * time.Hour

// roomKey is the key that signs a run's room tokens, offline, as a room's
// owner would: only its public half and kid go to the server.
type roomKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	kid  string // keyring.RoomKeyID(pub), what set-room-key derives
}

// parseRoomKeySeed turns the hex of a 32-byte Ed25519 seed into a room
// key; "" makes a fresh one. A given seed lets another tool sign tokens
// for the same rooms. The seed is a secret: errors say what is wrong with
// it, never what it is.
func parseRoomKeySeed(seedHex string) (*roomKey, error) {
	var priv ed25519.PrivateKey
	if seedHex == "" {
		var err error
		if _, priv, err = ed25519.GenerateKey(nil); err != nil {
			return nil, fmt.Errorf("loadgen: generate room key: %w", err)
		}
	} else {
		if len(seedHex) != 2*ed25519.SeedSize {
			return nil, cfgErr("RoomKeySeed", "must be %d hex digits (a %d-byte Ed25519 seed), got %d characters",
				2*ed25519.SeedSize, ed25519.SeedSize, len(seedHex))
		}
		seed, err := hex.DecodeString(seedHex)
		if err != nil {
			return nil, cfgErr("RoomKeySeed", "must be hex digits (a %d-byte Ed25519 seed)", ed25519.SeedSize)
		}
		priv = ed25519.NewKeyFromSeed(seed)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &roomKey{priv: priv, pub: pub, kid: keyring.RoomKeyID(pub)}, nil
}

// sign returns hello.token for peer in room: no capability class (the
// session only needs admission) and the kid, so the server tries only
// this key. Ed25519 signing costs ~20 µs, which is why scenarios call it
// before their clock starts.
func (k *roomKey) sign(room string, peer ed25519.PublicKey, expiry time.Time) (json.RawMessage, token.RoomToken, error) {
	tok := token.SignRoom(k.priv, room, peer, uint64(expiry.Unix()), nil, k.kid)
	b, err := json.Marshal(tok)
	if err != nil {
		return nil, token.RoomToken{}, fmt.Errorf("loadgen: encode room token: %w", err)
	}
	return b, tok, nil
}

// lockRooms gives every room the key (RoomService.SetRoomKey) and then
// locks it to its own keys (LockRoom "own-keys"), on admin address 0,
// prepareConcurrency rooms at a time. The key goes first: a room locked
// with no key would refuse everyone, and LockRoom refuses "own-keys" for a
// room without one. A failure names the command, room and the server's
// code and reason.
func (k *roomKey) lockRooms(ctx context.Context, admin *AdminTarget, conn *grpc.ClientConn, timeout time.Duration, rooms []string) error {
	rs := adminv1.NewRoomServiceClient(conn)
	addr := admin.Addrs[0]
	pub := hex.EncodeToString(k.pub)
	return forEach(ctx, len(rooms), prepareConcurrency, func(ctx context.Context, i int) error {
		room := rooms[i]
		cctx, cancel := context.WithTimeout(admin.outgoing(ctx), timeout)
		defer cancel()
		resp, err := rs.SetRoomKey(cctx, &adminv1.SetRoomKeyRequest{Room: room, Pubkey: pub, Kid: k.kid})
		if err != nil {
			return callError("set-room-key", room, addr, err)
		}
		if resp.GetKid() != k.kid {
			return fmt.Errorf("loadgen: set-room-key on room %s via %s answered kid %q, want %q", room, addr, resp.GetKid(), k.kid)
		}
		if _, err := rs.LockRoom(cctx, &adminv1.LockRoomRequest{Room: room, Mode: lockModeOwnKeys}); err != nil {
			return callError("lock-room", room, addr, err)
		}
		return nil
	})
}

// awaitLocked waits until the node behind roomURL refuses a hello without
// a token as locked, which proves it has applied the lock and, since the
// key was committed before it, the key: a follower applies the leader's
// commits a little later, and a session dialled there in between would be
// refused its token ("unknown key id") or admitted without one. The node
// offers no signal for this, so it probes (a fresh key each time) every
// lockPollInterval until timeout.
func awaitLocked(ctx context.Context, roomURL string, timeout time.Duration) error {
	key, err := client.GenerateKey()
	if err != nil {
		return fmt.Errorf("loadgen: generate probe key: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		conn, err := client.Dial(ctx, roomURL, client.Options{Key: key, Subscribe: publisherSubscribe, PeerType: "bench"})
		var he *client.HelloError
		switch {
		case errors.As(err, &he) && he.Msg == lockedRoomRefusal:
			return nil
		case err == nil:
			_ = conn.Close()
			last = "it still admits a hello without a token"
		default:
			last = err.Error()
		}
		t := time.NewTimer(lockPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("loadgen: %s not locked %s after lock-room: %s (does the server enforce room locks?)", roomURL, timeout, last)
		case <-t.C:
		}
	}
}
