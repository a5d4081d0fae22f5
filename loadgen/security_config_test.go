package loadgen

import (
	"crypto/ed25519"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/token"
)

func testAdminTarget() AdminTarget {
	return AdminTarget{Addrs: []string{"127.0.0.1:7879"}, TLS: &tls.Config{}, Token: "t"}
}

func TestJoinstormLockedValidate(t *testing.T) {
	base := DefaultJoinstormConfig()
	base.Locked, base.Admin = true, testAdminTarget()
	if err := base.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		mod   func(*JoinstormConfig)
		field string
	}{
		{"seed without lock", func(c *JoinstormConfig) { c.Locked, c.RoomKeySeed = false, strings.Repeat("00", 32) }, "RoomKeySeed"},
		{"hold without a cap", func(c *JoinstormConfig) { c.Hold = true }, "MaxConnections"},
		{"no admin address", func(c *JoinstormConfig) { c.Admin.Addrs = nil }, "Addrs"},
		{"no token", func(c *JoinstormConfig) { c.Admin.Token = "" }, "Token"},
		{"no TLS", func(c *JoinstormConfig) { c.Admin.TLS = nil }, "TLS"},
	} {
		cfg := base
		c.mod(&cfg)
		if got := fieldOf(cfg.validate()); got != c.field {
			t.Errorf("%s: error field %q, want %q", c.name, got, c.field)
		}
	}
	// Open rooms need no admin connection.
	open := DefaultJoinstormConfig()
	if err := open.validate(); err != nil {
		t.Errorf("open rooms: %v", err)
	}
	held := base
	held.Hold, held.MaxConnections = true, 10
	if err := held.validate(); err != nil {
		t.Errorf("locked hold with a cap: %v", err)
	}
}

// checkToken verifies a pre-signed token as the server would.
func checkToken(t *testing.T, k *roomKey, raw []byte, room string, peer ed25519.PrivateKey) {
	t.Helper()
	tok, err := token.ParseRoomToken(raw)
	if err != nil {
		t.Fatalf("token for %s: %v", room, err)
	}
	if err := token.VerifyRoom(tok, room, peer.Public().(ed25519.PublicKey), []ed25519.PublicKey{k.pub}, time.Now()); err != nil {
		t.Fatalf("token for %s does not verify for its dial: %v", room, err)
	}
}

// TestStormCreds: every dial of a locked storm carries a token for the
// room it goes to and the key it uses, for dialers whose room cycle is
// shorter than the rooms (gcd > 1) and not.
func TestStormCreds(t *testing.T) {
	k, err := parseRoomKeySeed("")
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return "r" + string(rune('a'+i)) }
	for _, shape := range [][2]int{{4, 6}, {3, 5}, {1, 1}, {8, 2}} {
		cfg := DefaultJoinstormConfig()
		cfg.Concurrency, cfg.Rooms = shape[0], shape[1]
		c, err := newStormCreds(testCtx(t), &cfg, k, name)
		if err != nil {
			t.Fatal(err)
		}
		if want := cfg.Rooms / gcd(cfg.Concurrency, cfg.Rooms); c.period != want {
			t.Fatalf("%v: period %d, want %d", shape, c.period, want)
		}
		seen := map[int]bool{}
		for w := range cfg.Concurrency {
			for i := range 3 * cfg.Rooms {
				d, err := c.dial(w, i, false)
				if err != nil {
					t.Fatal(err)
				}
				if d.room != (w+i*cfg.Concurrency)%cfg.Rooms || d.slot != -1 || !d.key.Equal(c.keys[w]) {
					t.Fatalf("%v: dialer %d dial %d: %+v", shape, w, i, d)
				}
				checkToken(t, k, d.token, name(d.room), d.key)
				seen[d.room] = true
			}
		}
		if len(seen) != cfg.Rooms {
			t.Errorf("%v: dials reach %d of %d rooms", shape, len(seen), cfg.Rooms)
		}
	}
	// Open rooms: no token.
	cfg := DefaultJoinstormConfig()
	c, err := newStormCreds(testCtx(t), &cfg, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.dial(0, 0, false); err != nil || d.token != nil {
		t.Fatalf("open room dial %+v, %v", d, err)
	}
}

// TestStormCredsHeld: with Hold every slot is a distinct peer with a token
// for its room; a failed dial's slot is handed out again, and no more
// slots than MaxConnections exist.
func TestStormCredsHeld(t *testing.T) {
	k, err := parseRoomKeySeed("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultJoinstormConfig()
	cfg.Hold, cfg.MaxConnections, cfg.Rooms, cfg.Concurrency = true, 7, 3, 2
	name := func(i int) string { return "held-" + string(rune('0'+i)) }
	c, err := newStormCreds(testCtx(t), &cfg, k, name)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var first stormDial
	for n := range 7 {
		d, err := c.dial(n%2, n, true)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			first = d
		}
		if d.room != d.slot%3 {
			t.Errorf("slot %d in room %d", d.slot, d.room)
		}
		checkToken(t, k, d.token, name(d.room), d.key)
		keys[string(d.key)] = true
	}
	if len(keys) != 7 {
		t.Fatalf("%d distinct keys for 7 held sessions", len(keys))
	}
	if _, err := c.dial(0, 9, true); err == nil {
		t.Fatal("an eighth slot was handed out")
	}
	c.release(first)
	if d, err := c.dial(1, 10, true); err != nil || d.slot != first.slot {
		t.Fatalf("after release: %+v, %v; want slot %d again", d, err, first.slot)
	}
}

func TestRevokeConfigValidate(t *testing.T) {
	base := DefaultRevokeConfig()
	base.Admin = testAdminTarget()
	base.URLs = []string{"ws://127.0.0.1:7878", "ws://127.0.0.1:7978/ws/"}
	bases, err := base.validate()
	if err != nil {
		t.Fatal(err)
	}
	if bases[0] != "ws://127.0.0.1:7878/ws/" || bases[1] != "ws://127.0.0.1:7978/ws/" {
		t.Fatalf("bases %q", bases)
	}
	for _, c := range []struct {
		name  string
		mod   func(*RevokeConfig)
		field string
	}{
		{"no URL", func(c *RevokeConfig) { c.URLs = nil }, "URLs"},
		{"http URL", func(c *RevokeConfig) { c.URLs = []string{"ws://a:1", "http://b:2"} }, "URLs"},
		{"no sessions", func(c *RevokeConfig) { c.Sessions = 0 }, "Sessions"},
		{"no peers", func(c *RevokeConfig) { c.Peers = 0 }, "Peers"},
		{"more peers than sessions", func(c *RevokeConfig) { c.Sessions, c.Peers = 3, 4 }, "Peers"},
		{"by what", func(c *RevokeConfig) { c.By = "key" }, "By"},
		{"no rounds", func(c *RevokeConfig) { c.Rounds = 0 }, "Rounds"},
		{"no timeout", func(c *RevokeConfig) { c.CloseTimeout = 0 }, "CloseTimeout"},
		{"bad prefix", func(c *RevokeConfig) { c.RoomPrefix = "a b" }, "RoomPrefix"},
		{"long prefix", func(c *RevokeConfig) { c.RoomPrefix = strings.Repeat("p", 120) }, "RoomPrefix"},
		{"bad seed", func(c *RevokeConfig) { c.RoomKeySeed = "abcd" }, "RoomKeySeed"},
		{"no admin token", func(c *RevokeConfig) { c.Admin.Token = "" }, "Token"},
	} {
		cfg := base
		c.mod(&cfg)
		if _, err := cfg.validate(); fieldOf(err) != c.field {
			t.Errorf("%s: error %v, want field %s", c.name, err, c.field)
		}
	}
}

// TestRevokePlace: every peer has a session, each peer's sessions cover
// as many nodes as they can (above all the revoked peer 0's), peers'
// shares differ by at most one, and so do the nodes' loads per peer.
func TestRevokePlace(t *testing.T) {
	for _, shape := range [][3]int{{300, 3, 1}, {300, 3, 30}, {300, 3, 300}, {300, 3, 7}, {20, 3, 4}, {7, 1, 7}, {5, 4, 2}} {
		sessions, nodes, peers := shape[0], shape[1], shape[2]
		count := make([]int, peers)
		onNode := make([]map[int]int, peers)
		load := make([]int, nodes)
		for i := range sessions {
			n, p := revokePlace(i, 0, nodes, peers)
			count[p]++
			load[n]++
			if onNode[p] == nil {
				onNode[p] = map[int]int{}
			}
			onNode[p][n]++
		}
		for p, c := range count {
			if c == 0 {
				t.Fatalf("%v: peer %d has no session", shape, p)
			}
			if len(onNode[p]) != min(c, nodes) {
				t.Errorf("%v: peer %d's %d sessions are on %d nodes", shape, p, c, len(onNode[p]))
			}
			lo, hi := c, 0
			for _, k := range onNode[p] {
				lo, hi = min(lo, k), max(hi, k)
			}
			if hi-lo > 1 {
				t.Errorf("%v: peer %d has %d..%d sessions per node", shape, p, lo, hi)
			}
		}
		if slices.Max(count)-slices.Min(count) > 1 {
			t.Errorf("%v: peer shares %v", shape, count)
		}
		if slices.Max(load)-slices.Min(load) > peers {
			t.Errorf("%v: node loads %v", shape, load)
		}
	}
	// A peer 0 with one session moves to the next node each round.
	for r := range 4 {
		if n, p := revokePlace(0, r, 3, 300); n != r%3 || p != 0 {
			t.Errorf("round %d: session 0 on node %d peer %d", r, n, p)
		}
	}
}
