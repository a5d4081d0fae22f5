package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
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
	Server  *ProcessUsage  `json:"server,omitempty"`
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
			DurationSecs: cfg.Duration.Seconds(), Hold: cfg.Hold, MaxConnections: cfg.MaxConnections},
		Warnings: []string{},
	}
	// Closing a dialer's session is not part of its handshake latency
	// but is part of the storm's cost, as for a real reconnecting client.
	// Without Hold a dialer reuses one key (a client reconnecting); with
	// Hold every session gets its own, so each is a distinct peer.
	keys := make([]ed25519.PrivateKey, cfg.Concurrency)
	for i := range keys {
		if keys[i], err = client.GenerateKey(); err != nil {
			return nil, err
		}
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
				key := keys[w]
				if cfg.Hold {
					var err error
					if key, err = client.GenerateKey(); err != nil {
						errs.add(err)
						return
					}
				}
				room := t.room((w + i*cfg.Concurrency) % cfg.Rooms)
				dctx, dcancel := context.WithTimeout(context.Background(), dialTimeout)
				t0 := time.Now()
				conn, err := client.Dial(dctx, room, client.Options{Key: key, Subscribe: publisherSubscribe, PeerType: "bench"})
				lat := time.Since(t0)
				dcancel()
				if err != nil {
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
