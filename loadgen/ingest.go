package loadgen

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
)

// IngestConfig describes an ingest run: Publishers publishers write packs
// of PackSize pre-signed nodes into one room as fast as the server
// acknowledges them.
type IngestConfig struct {
	Target
	Publishers int
	PackSize   int
	// Window is the most packs a publisher has unacknowledged; 1 sends
	// each pack when the previous one is acknowledged.
	Window       int
	PayloadBytes int
	Warmup       time.Duration
	Duration     time.Duration
	// Presign is the number of nodes to sign per publisher; 0 sizes it
	// for autoMaxRate nodes/s shared by all publishers.
	Presign int
	// Drain bounds the wait for the last acks; 0 means 10 s.
	Drain           time.Duration
	DialConcurrency int
}

// DefaultIngestConfig: 4 publishers, packs of 16 nodes, one in flight
// each, 128-byte values, 10 s after 1 s of warm-up.
func DefaultIngestConfig() IngestConfig {
	return IngestConfig{
		Target:       Target{URL: "ws://127.0.0.1:7878"},
		Publishers:   4,
		PackSize:     16,
		Window:       1,
		PayloadBytes: 128,
		Warmup:       time.Second,
		Duration:     10 * time.Second,
	}
}

func (c *IngestConfig) validate() error {
	switch {
	case c.Publishers < 1:
		return cfgErr("Publishers", "must be at least 1, got %d", c.Publishers)
	case c.PackSize < 1:
		return cfgErr("PackSize", "must be at least 1, got %d", c.PackSize)
	case c.Window < 1:
		return cfgErr("Window", "must be at least 1, got %d", c.Window)
	case c.PayloadBytes < MinPayloadBytes:
		return cfgErr("PayloadBytes", "must be at least %d (the payload header), got %d", MinPayloadBytes, c.PayloadBytes)
	case c.Warmup < 0:
		return cfgErr("Warmup", "must not be negative, got %s", c.Warmup)
	case c.Duration <= 0:
		return cfgErr("Duration", "must be positive, got %s", c.Duration)
	case c.Presign < 0:
		return cfgErr("Presign", "must not be negative, got %d", c.Presign)
	case c.Drain < 0:
		return cfgErr("Drain", "must not be negative, got %s", c.Drain)
	case c.DialConcurrency < 0:
		return cfgErr("DialConcurrency", "must not be negative, got %d", c.DialConcurrency)
	}
	return nil
}

// IngestResult is what an ingest run measured over its window.
type IngestResult struct {
	Scenario         string         `json:"scenario"` // "ingest"
	Config           IngestSettings `json:"config"`
	WindowSeconds    float64        `json:"window_seconds"`
	Accepted         uint64         `json:"accepted"` // nodes, from pack-ack counts
	AcceptedPerSec   float64        `json:"accepted_per_sec"`
	Packs            uint64         `json:"packs"` // packs acknowledged
	PacksPerSec      float64        `json:"packs_per_sec"`
	Rejected         uint64         `json:"rejected"`
	PresignSeconds   float64        `json:"presign_seconds"`
	PresignExhausted bool           `json:"presign_exhausted"`
	// AckLatency is pack sent → its pack-ack read, for packs sent in the
	// window.
	AckLatency LatencySummary `json:"ack_latency"`
	Server     *ProcessUsage  `json:"server,omitempty"`
	// Generator is this process over the same window.
	Generator *ProcessUsage `json:"generator,omitempty"`
	Warnings  []string      `json:"warnings"`
	Errors    []string      `json:"errors"`
}

// IngestSettings echoes the configuration into the report.
type IngestSettings struct {
	URL           string  `json:"url"`
	Publishers    int     `json:"publishers"`
	PackSize      int     `json:"pack_size"`
	Window        int     `json:"window"`
	PayloadBytes  int     `json:"payload_bytes"`
	WarmupSeconds float64 `json:"warmup_seconds"`
	DurationSecs  float64 `json:"duration_seconds"`
	PresignNodes  int     `json:"presign_nodes_per_publisher"`
}

// RunIngest runs the ingest scenario against a live server.
func RunIngest(ctx context.Context, cfg IngestConfig) (*IngestResult, error) {
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
	self := newSelfProbe()
	if cfg.Drain == 0 {
		cfg.Drain = 10 * time.Second
	}
	nodes := cfg.Presign
	if nodes == 0 {
		nodes = int(math.Ceil(autoMaxRate*(cfg.Warmup+cfg.Duration).Seconds()*1.1/float64(cfg.Publishers))) + cfg.Window*cfg.PackSize
	}
	packs := max((nodes+cfg.PackSize-1)/cfg.PackSize, 1)
	res := &IngestResult{
		Scenario: "ingest",
		Config: IngestSettings{
			URL: cfg.URL, Publishers: cfg.Publishers, PackSize: cfg.PackSize, Window: cfg.Window,
			PayloadBytes: cfg.PayloadBytes, WarmupSeconds: cfg.Warmup.Seconds(), DurationSecs: cfg.Duration.Seconds(),
			PresignNodes: packs * cfg.PackSize,
		},
		Warnings: []string{},
		Errors:   []string{},
	}

	t.log.Info("signing", "publishers", cfg.Publishers, "nodes_each", packs*cfg.PackSize)
	signStart := time.Now()
	specs := make([]chainSpec, cfg.Publishers)
	for p := range specs {
		key, err := client.GenerateKey()
		if err != nil {
			return nil, err
		}
		specs[p] = chainSpec{key: key, publisher: uint32(p), packs: packs, packSize: cfg.PackSize,
			payloadBytes: cfg.PayloadBytes, path: fmt.Sprintf("ingest/p%d", p)}
	}
	chains, err := signChains(ctx, specs)
	if err != nil {
		return nil, err
	}
	res.PresignSeconds = time.Since(signStart).Seconds()

	clk := newClock()
	pubs := make([]*publisher, cfg.Publishers)
	defer func() {
		var fns []func()
		for _, p := range pubs {
			if p != nil {
				fns = append(fns, func() { _ = p.conn.Close() })
			}
		}
		closeFuncs(fns, cfg.DialConcurrency)
	}()
	room := t.room(0)
	err = forEach(ctx, cfg.Publishers, orDefault(cfg.DialConcurrency, defaultDialConcurrency), func(ctx context.Context, p int) error {
		conn, err := client.Dial(ctx, room, client.Options{
			Key: chains[p].key, Subscribe: publisherSubscribe, PeerID: fmt.Sprintf("ingest-%d", p), PeerType: "bench",
		})
		if err != nil {
			return err
		}
		pubs[p] = newPublisher(conn, chains[p], clk, make([]atomic.Int64, len(chains[p].frames)))
		return nil
	})
	if err != nil {
		return nil, err
	}

	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopAll()
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	pc := pacing{window: cfg.Window, drain: cfg.Drain}
	for i, p := range pubs {
		wg.Go(func() { errs[i] = p.run(ctx, stop, pc) })
	}
	counts := func() (nodes, packs uint64) {
		for _, p := range pubs {
			nodes += p.ackedNodes.Load()
			packs += p.acked.Load()
		}
		return nodes, packs
	}
	t.log.Info("warming up", "for", cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		stopAll()
		wg.Wait()
		return nil, err
	}
	winStart := clk.openWindow()
	if err := probe.start(); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	_ = self.start() // best effort: only informative
	n0, p0 := counts()
	t.log.Info("measuring", "for", cfg.Duration)
	werr := sleep(ctx, cfg.Duration)
	winEnd := clk.closeWindow()
	n1, p1 := counts()
	res.Accepted, res.Packs = n1-n0, p1-p0
	if su, err := probe.stop(res.Accepted); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	} else {
		res.Server = su
	}
	res.Generator, _ = self.stop(res.Accepted)
	stopAll()
	wg.Wait()
	if werr != nil {
		return nil, werr
	}

	res.WindowSeconds = time.Duration(winEnd - winStart).Seconds()
	res.AcceptedPerSec = float64(res.Accepted) / res.WindowSeconds
	res.PacksPerSec = float64(res.Packs) / res.WindowSeconds
	ack := NewHistogram()
	for i, p := range pubs {
		if errs[i] != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("publisher %d: %v", i, errs[i]))
		}
		if s := p.firstReject.Load(); s != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("publisher %d: nodes rejected: %s", i, *s))
		}
		res.Rejected += p.rejectedNodes.Load()
		res.PresignExhausted = res.PresignExhausted || p.exhausted.Load()
		ack.Merge(p.ackHist)
	}
	res.AckLatency = ack.Summary()
	if res.PresignExhausted {
		res.Warnings = append(res.Warnings, fmt.Sprintf("a publisher sent all %d pre-signed nodes before the window ended: rates are low; raise the pre-signed count", packs*cfg.PackSize))
	}
	return res, nil
}
