package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
)

// setupCallTimeout bounds each admin call a scenario makes before its
// clock starts (room keys, locks).
const setupCallTimeout = 10 * time.Second

// stormCreds is what every dial of a join storm sends, decided and (for
// locked rooms) signed before the clock starts.
//
// Without Hold, dialer w reuses one key (a reconnecting client) and its
// i-th dial goes to room (w + i·C) mod R, which repeats with period
// R / gcd(C, R): tokens[w][i mod period] is the token for that room.
// With Hold and Locked there are MaxConnections slots, each a distinct
// peer heldKeys[n] with heldTokens[n] for room n mod R: a dial takes a
// free slot and gives it back if it fails, so no two held sessions share
// a key. With Hold and open rooms, keys are made per dial.
type stormCreds struct {
	rooms, conc int
	keys        []ed25519.PrivateKey
	period      int
	tokens      [][]json.RawMessage // Locked, not Hold
	heldKeys    []ed25519.PrivateKey
	heldTokens  []json.RawMessage // Locked and Hold
	free        chan int          // free slots of heldKeys
}

// stormDial is what one dial sends.
type stormDial struct {
	room  int
	key   ed25519.PrivateKey
	token json.RawMessage // nil for open rooms
	slot  int             // of heldKeys, or -1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// newStormCreds makes the dialers' keys and, when key is not nil, signs
// the tokens for rooms named by name, using every CPU.
func newStormCreds(ctx context.Context, cfg *JoinstormConfig, key *roomKey, name func(int) string) (*stormCreds, error) {
	c := &stormCreds{rooms: cfg.Rooms, conc: cfg.Concurrency, keys: make([]ed25519.PrivateKey, cfg.Concurrency)}
	c.period = cfg.Rooms / gcd(cfg.Concurrency, cfg.Rooms)
	for i := range c.keys {
		var err error
		if c.keys[i], err = client.GenerateKey(); err != nil {
			return nil, fmt.Errorf("loadgen: generate peer key: %w", err)
		}
	}
	if key == nil {
		return c, nil
	}
	expiry := time.Now().Add(cfg.Duration + tokenLifetime)
	workers := runtime.GOMAXPROCS(0)
	if cfg.Hold {
		n := cfg.MaxConnections
		c.heldKeys, c.heldTokens = make([]ed25519.PrivateKey, n), make([]json.RawMessage, n)
		c.free = make(chan int, n)
		for i := range n {
			c.free <- i
		}
		return c, forEach(ctx, n, workers, func(_ context.Context, i int) error {
			k, err := client.GenerateKey()
			if err != nil {
				return fmt.Errorf("loadgen: generate peer key: %w", err)
			}
			c.heldKeys[i] = k
			c.heldTokens[i], _, err = key.sign(name(i%cfg.Rooms), k.Public().(ed25519.PublicKey), expiry)
			return err
		})
	}
	c.tokens = make([][]json.RawMessage, cfg.Concurrency)
	return c, forEach(ctx, cfg.Concurrency, workers, func(_ context.Context, w int) error {
		c.tokens[w] = make([]json.RawMessage, c.period)
		pub := c.keys[w].Public().(ed25519.PublicKey)
		for j := range c.period {
			var err error
			if c.tokens[w][j], _, err = key.sign(name(c.room(w, j)), pub, expiry); err != nil {
				return err
			}
		}
		return nil
	})
}

// room is the room of dialer w's i-th dial without Hold.
func (c *stormCreds) room(w, i int) int { return (w + i*c.conc) % c.rooms }

// dial answers dialer w's i-th dial. With Hold and Locked it takes a free
// slot; the caller's MaxConnections count guarantees one (every slot taken
// is a held session or a dial in flight), so none left is a bug.
func (c *stormCreds) dial(w, i int, hold bool) (stormDial, error) {
	d := stormDial{room: c.room(w, i), key: c.keys[w], slot: -1}
	switch {
	case hold && c.free != nil:
		select {
		case n := <-c.free:
			return stormDial{room: n % c.rooms, key: c.heldKeys[n], token: c.heldTokens[n], slot: n}, nil
		default:
			return d, fmt.Errorf("loadgen: no pre-signed token left (bug: more dials than --connections)")
		}
	case hold:
		var err error
		if d.key, err = client.GenerateKey(); err != nil {
			return d, fmt.Errorf("loadgen: generate peer key: %w", err)
		}
	case c.tokens != nil:
		d.token = c.tokens[w][i%c.period]
	}
	return d, nil
}

// release gives a failed dial's slot back.
func (c *stormCreds) release(d stormDial) {
	if d.slot >= 0 {
		c.free <- d.slot
	}
}
