package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
)

// dialTimeout bounds one handshake in a join storm: a server that stops
// answering turns into counted failures, not a hung run.
const dialTimeout = 10 * time.Second

// maxErrorKinds caps the distinct error texts a join storm reports.
const maxErrorKinds = 10

// JoinstormConfig describes a join storm: Concurrency dialers open
// sessions (hello → welcome) to Rooms rooms, round robin, for Duration.
type JoinstormConfig struct {
	Target
	Rooms       int
	Concurrency int
	Duration    time.Duration
	// Hold keeps every session open until the end (each with a reader
	// draining what the server sends) to measure the server's memory per
	// idle connection; otherwise each is closed right after its welcome.
	Hold bool
	// MaxConnections, with Hold, stops dialing once this many sessions
	// are open (0: no limit but Duration).
	MaxConnections int
	// Locked locks every room before the storm: the tool sets a room key
	// (RoomService.SetRoomKey) and locks the room to it (LockRoom
	// "own-keys") through Admin, and every session's hello carries a
	// token signed offline with that key for the session's own keypair.
	// Tokens are signed before the clock starts, so the figure is the
	// server's admission (a signature check per hello) and not the
	// generator's signing. With Hold, MaxConnections is required: each
	// held session is a distinct peer with its own pre-signed token.
	Locked bool
	// Admin is the admin API that sets the room key and locks the rooms
	// (Locked only; the calls go to Admin.Addrs[0]). The token needs
	// room.admin.
	Admin AdminTarget
	// RoomKeySeed is the hex of the room key's 32-byte Ed25519 seed
	// (Locked only); empty makes a fresh key. A secret: it never appears
	// in reports or errors (the key's kid does).
	RoomKeySeed string
}

// DefaultJoinstormConfig: 16 dialers into one room for 10 s, closing each
// session after its welcome.
func DefaultJoinstormConfig() JoinstormConfig {
	return JoinstormConfig{
		Target:      Target{URL: "ws://127.0.0.1:7878"},
		Rooms:       1,
		Concurrency: 16,
		Duration:    10 * time.Second,
	}
}

func (c *JoinstormConfig) validate() error {
	switch {
	case c.Rooms < 1:
		return cfgErr("Rooms", "must be at least 1, got %d", c.Rooms)
	case c.Concurrency < 1:
		return cfgErr("Concurrency", "must be at least 1, got %d", c.Concurrency)
	case c.Duration <= 0:
		return cfgErr("Duration", "must be positive, got %s", c.Duration)
	case c.MaxConnections < 0:
		return cfgErr("MaxConnections", "must not be negative, got %d", c.MaxConnections)
	case c.MaxConnections > 0 && !c.Hold:
		return cfgErr("MaxConnections", "only applies with Hold")
	case !c.Locked && c.RoomKeySeed != "":
		return cfgErr("RoomKeySeed", "only applies with Locked")
	case c.Locked && c.Hold && c.MaxConnections == 0:
		return cfgErr("MaxConnections", "is required with Hold and Locked: every held session needs a token signed before the storm")
	}
	if c.Locked {
		return c.Admin.validate()
	}
	return nil
}

// JoinstormResult is what a join storm measured.
type JoinstormResult struct {
	Scenario         string            `json:"scenario"` // "joinstorm"
	Config           JoinstormSettings `json:"config"`
	WindowSeconds    float64           `json:"window_seconds"`
	Handshakes       uint64            `json:"handshakes"` // welcomed sessions
	HandshakesPerSec float64           `json:"handshakes_per_sec"`
	Failures         uint64            `json:"failures"`
	// Latency is dial start → welcome read (TCP connect, upgrade, hello).
	Latency LatencySummary `json:"latency"`
	Held    int            `json:"held"` // sessions open at the end (Hold)
	// PresignSeconds is the time spent signing tokens (Locked), before
	// the clock.
	PresignSeconds float64       `json:"presign_seconds,omitempty"`
	Server         *ProcessUsage `json:"server,omitempty"`
	// Generator is this process over the same window.
	Generator *ProcessUsage `json:"generator,omitempty"`
	Warnings  []string      `json:"warnings"`
	Errors    []string      `json:"errors"`
}

// JoinstormSettings echoes the configuration into the report.
type JoinstormSettings struct {
	URL            string  `json:"url"`
	Rooms          int     `json:"rooms"`
	Concurrency    int     `json:"concurrency"`
	DurationSecs   float64 `json:"duration_seconds"`
	Hold           bool    `json:"hold"`
	MaxConnections int     `json:"max_connections"`
	// RoomPrefix names the rooms: <room_prefix>-room0, -room1, ...
	RoomPrefix string `json:"room_prefix"`
	// Locked rooms admit only tokens of the room key RoomKeyID.
	Locked    bool   `json:"locked"`
	RoomKeyID string `json:"room_key_id,omitempty"`
}

// stormErrors counts failures by text.
type stormErrors struct {
	mu     sync.Mutex
	counts map[string]int
}

func (e *stormErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := err.Error()
	if _, ok := e.counts[msg]; ok || len(e.counts) < maxErrorKinds {
		e.counts[msg]++
	}
}

func (e *stormErrors) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.counts))
	for msg, n := range e.counts {
		out = append(out, fmt.Sprintf("%d× %s", n, msg))
	}
	sort.Strings(out)
	return out
}

// RunJoinstorm runs the join-storm scenario against a live server.
func RunJoinstorm(ctx context.Context, cfg JoinstormConfig) (*JoinstormResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t, err := cfg.Target.resolve()
	if err != nil {
		return nil, err
	}
	probe, err := newProcProbe(t.pid)
	if err != nil {
		return nil, err
	}
	res := &JoinstormResult{
		Scenario: "joinstorm",
		Config: JoinstormSettings{URL: cfg.URL, Rooms: cfg.Rooms, Concurrency: cfg.Concurrency,
			DurationSecs: cfg.Duration.Seconds(), Hold: cfg.Hold, MaxConnections: cfg.MaxConnections,
			RoomPrefix: strings.TrimSuffix(t.prefix, "-"), Locked: cfg.Locked},
		Warnings: []string{},
	}
	var key *roomKey
	if cfg.Locked {
		if key, err = lockStormRooms(ctx, &cfg, t); err != nil {
			return nil, err
		}
		res.Config.RoomKeyID = key.kid
	}
	// Closing a dialer's session is not part of its handshake latency
	// but is part of the storm's cost, as for a real reconnecting client.
	// Without Hold a dialer reuses one key (a client reconnecting); with
	// Hold every session gets its own, so each is a distinct peer.
	signStart := time.Now()
	creds, err := newStormCreds(ctx, &cfg, key, t.roomName)
	if err != nil {
		return nil, err
	}
	if cfg.Locked {
		res.PresignSeconds = time.Since(signStart).Seconds()
		t.log.Info("tokens signed", "seconds", res.PresignSeconds)
	}

	var (
		held       []*client.Conn
		heldMu     sync.Mutex
		drainers   sync.WaitGroup
		opened     atomic.Int64
		failures   atomic.Uint64
		dropped    atomic.Uint64 // held sessions the server ended
		errs       = &stormErrors{counts: map[string]int{}}
		hists      = make([]*Histogram, cfg.Concurrency)
		handshakes = make([]uint64, cfg.Concurrency)
	)
	defer func() {
		heldMu.Lock()
		fns := make([]func(), len(held))
		for i, c := range held {
			fns[i] = func() { _ = c.Close() }
		}
		heldMu.Unlock()
		closeFuncs(fns, 64)
		drainers.Wait()
	}()

	if err := probe.start(); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	self := newSelfProbe()
	_ = self.start() // best effort: only informative
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		h := NewHistogram()
		hists[w] = h
		wg.Go(func() {
			for i := 0; runCtx.Err() == nil; i++ {
				if cfg.MaxConnections > 0 && opened.Add(1) > int64(cfg.MaxConnections) {
					return
				}
				d, err := creds.dial(w, i, cfg.Hold)
				if err != nil {
					errs.add(err)
					return
				}
				dctx, dcancel := context.WithTimeout(context.Background(), dialTimeout)
				t0 := time.Now()
				conn, err := client.Dial(dctx, t.room(d.room), client.Options{Key: d.key, Token: d.token, Subscribe: publisherSubscribe, PeerType: "bench"})
				lat := time.Since(t0)
				dcancel()
				if err != nil {
					creds.release(d)
					opened.Add(-1)
					failures.Add(1)
					errs.add(err)
					continue
				}
				h.Record(lat)
				handshakes[w]++
				if !cfg.Hold {
					_ = conn.Close()
					continue
				}
				heldMu.Lock()
				held = append(held, conn)
				heldMu.Unlock()
				// Peer events keep arriving; an unread session would fill
				// its server queue and be closed with 4001.
				drainers.Go(func() {
					for {
						_, err := conn.Next(context.Background())
						if errors.Is(err, client.ErrClosed) {
							return
						}
						if err != nil {
							dropped.Add(1)
							errs.add(fmt.Errorf("held session ended: %w", err))
							return
						}
					}
				})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loadgen: interrupted: %w", ctx.Err())
	}
	all := NewHistogram()
	for w, h := range hists {
		all.Merge(h)
		res.Handshakes += handshakes[w]
	}
	res.WindowSeconds = elapsed.Seconds()
	res.HandshakesPerSec = float64(res.Handshakes) / res.WindowSeconds
	res.Failures = failures.Load()
	res.Latency = all.Summary()
	res.Errors = errs.list()
	heldMu.Lock()
	res.Held = len(held) - int(dropped.Load())
	heldMu.Unlock()
	su, err := probe.stop(res.Handshakes)
	if err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	if su != nil && res.Held > 0 {
		su.RSSBytesPerConn = float64(su.RSSAfterBytes-su.RSSBeforeBytes) / float64(res.Held)
	}
	res.Server = su
	res.Generator, _ = self.stop(res.Handshakes)
	if cfg.Hold {
		// The sessions are still open here; they close when this returns.
		res.Warnings = append(res.Warnings, "RSS is the server's resident memory: the Go runtime keeps freed memory for a while, so the delta per connection is an upper bound")
	}
	return res, nil
}

// lockStormRooms makes the room key and locks the storm's rooms to it.
func lockStormRooms(ctx context.Context, cfg *JoinstormConfig, t *target) (*roomKey, error) {
	key, err := parseRoomKeySeed(cfg.RoomKeySeed)
	if err != nil {
		return nil, err
	}
	conn, err := cfg.Admin.dial(0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rooms := make([]string, cfg.Rooms)
	for i := range rooms {
		rooms[i] = t.roomName(i)
	}
	t.log.Info("locking rooms", "rooms", len(rooms), "kid", key.kid, "admin", cfg.Admin.Addrs[0])
	if err := key.lockRooms(ctx, &cfg.Admin, conn, setupCallTimeout, rooms); err != nil {
		return nil, err
	}
	// The URL may be a follower's, which applies the locks a little
	// after the leader answered.
	if err := forEach(ctx, len(rooms), defaultDialConcurrency, func(ctx context.Context, i int) error {
		return awaitLocked(ctx, t.room(i), setupCallTimeout)
	}); err != nil {
		return nil, err
	}
	return key, nil
}
