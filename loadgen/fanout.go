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

// autoMaxRate is the per-publisher send rate assumed when sizing the
// pre-signed chain of a max-rate run without an explicit Presign: above
// what this server has been measured to sustain into one room, so the
// chain lasts; a run that still exhausts it says so in its warnings.
const autoMaxRate = 30000

// FanoutConfig describes a fan-out run: Rooms rooms, each with Subscribers
// receivers and Publishers publishers sending one-node packs.
type FanoutConfig struct {
	Target
	Rooms       int
	Subscribers int // per room
	Publishers  int // per room
	// Rate is packs per second per publisher; 0 sends as fast as Window
	// allows.
	Rate float64
	// Window is the most packs a publisher has sent and not yet seen
	// acknowledged.
	Window int
	// PayloadBytes is the size of the one MapSet value in each node
	// (at least MinPayloadBytes).
	PayloadBytes int
	Warmup       time.Duration
	Duration     time.Duration
	// Samples is how many receivers (over all rooms) fully decode packs to
	// measure end-to-end latency; the others only count frames.
	Samples int
	// Presign is the number of nodes to sign per publisher before the run;
	// 0 sizes it from Rate (or autoMaxRate) × (Warmup + Duration).
	Presign int
	// Drain bounds the wait, after the window, for the last acks and for
	// receivers to get every relayed pack; 0 means 10 s.
	Drain time.Duration
	// DialConcurrency bounds simultaneous dials during setup; 0 means 32.
	DialConcurrency int
}

// DefaultFanoutConfig is Centrifugo's published benchmark shape: one room,
// 100 subscribers, one publisher at max rate with 64 in flight, 128-byte
// payloads, 10 s after 1 s of warm-up.
func DefaultFanoutConfig() FanoutConfig {
	return FanoutConfig{
		Target:       Target{URL: "ws://127.0.0.1:7878"},
		Rooms:        1,
		Subscribers:  100,
		Publishers:   1,
		Window:       64,
		PayloadBytes: 128,
		Warmup:       time.Second,
		Duration:     10 * time.Second,
		Samples:      10,
	}
}

func (c *FanoutConfig) validate() error {
	switch {
	case c.Rooms < 1:
		return cfgErr("Rooms", "must be at least 1, got %d", c.Rooms)
	case c.Subscribers < 1:
		return cfgErr("Subscribers", "must be at least 1, got %d", c.Subscribers)
	case c.Publishers < 1:
		return cfgErr("Publishers", "must be at least 1, got %d", c.Publishers)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return cfgErr("Rate", "must be a finite number ≥ 0 (0 = max rate), got %v", c.Rate)
	case c.Window < 1:
		return cfgErr("Window", "must be at least 1, got %d", c.Window)
	case c.PayloadBytes < MinPayloadBytes:
		return cfgErr("PayloadBytes", "must be at least %d (the latency header), got %d", MinPayloadBytes, c.PayloadBytes)
	case c.Warmup < 0:
		return cfgErr("Warmup", "must not be negative, got %s", c.Warmup)
	case c.Duration <= 0:
		return cfgErr("Duration", "must be positive, got %s", c.Duration)
	case c.Samples < 0:
		return cfgErr("Samples", "must not be negative, got %d", c.Samples)
	case c.Presign < 0:
		return cfgErr("Presign", "must not be negative, got %d", c.Presign)
	case c.Drain < 0:
		return cfgErr("Drain", "must not be negative, got %s", c.Drain)
	case c.DialConcurrency < 0:
		return cfgErr("DialConcurrency", "must not be negative, got %d", c.DialConcurrency)
	}
	return nil
}

// presignCount is how many packs each publisher signs.
func presignCount(explicit int, rate float64, warmup, duration time.Duration, window int) int {
	if explicit > 0 {
		return explicit
	}
	if rate == 0 {
		rate = autoMaxRate
	}
	return int(math.Ceil(rate*(warmup+duration).Seconds()*11/10)) + window + 16
}

// FanoutResult is what a fan-out run measured. Rates are over the
// measured window only (after warm-up).
type FanoutResult struct {
	Scenario      string         `json:"scenario"` // "fanout"
	Config        FanoutSettings `json:"config"`
	WindowSeconds float64        `json:"window_seconds"`
	// Published counts nodes the server acknowledged as accepted.
	Published        uint64  `json:"published"`
	PublishedPerSec  float64 `json:"published_per_sec"`
	Delivered        uint64  `json:"delivered"` // pack frames read, summed over receivers
	DeliveredPerSec  float64 `json:"delivered_per_sec"`
	Rejected         uint64  `json:"rejected"`
	PresignSeconds   float64 `json:"presign_seconds"`
	PresignExhausted bool    `json:"presign_exhausted"`
	// Latency is publisher send → sampled receiver read, for packs sent
	// inside the window.
	Latency    LatencySummary  `json:"latency"`
	AckLatency LatencySummary  `json:"ack_latency"`
	Receivers  ReceiverSummary `json:"receivers"`
	Server     *ProcessUsage   `json:"server,omitempty"`
	// Generator is this process over the same window: if it nears the
	// machine's cores, the generator, not the server, is the limit.
	Generator *ProcessUsage `json:"generator,omitempty"`
	Warnings  []string      `json:"warnings"`
	Errors    []string      `json:"errors"`
}

// FanoutSettings echoes the configuration into the report.
type FanoutSettings struct {
	URL            string  `json:"url"`
	Rooms          int     `json:"rooms"`
	Subscribers    int     `json:"subscribers_per_room"`
	Publishers     int     `json:"publishers_per_room"`
	Rate           float64 `json:"rate_per_publisher"` // 0 = max
	Window         int     `json:"window"`
	PayloadBytes   int     `json:"payload_bytes"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	DurationSecs   float64 `json:"duration_seconds"`
	Samples        int     `json:"sampled_receivers"`
	PresignPerPubl int     `json:"presign_per_publisher"`
}

// ReceiverSummary says whether every receiver got every relayed pack.
type ReceiverSummary struct {
	Receivers int `json:"receivers"`
	Sampled   int `json:"sampled"`
	// Failed receivers were closed by the server (4001 when they fell
	// behind) or lost their connection.
	Failed int `json:"failed"`
	// Incomplete receivers were still short of the relayed packs of
	// their room when the drain time ran out.
	Incomplete  int    `json:"incomplete"`
	MinReceived uint64 `json:"min_received"`
	MaxReceived uint64 `json:"max_received"`
	Complete    bool   `json:"complete"`
}

// fanoutRun holds one run's moving parts.
type fanoutRun struct {
	cfg  FanoutConfig
	t    *target
	clk  *clock
	pubs [][]*publisher // [room][publisher]
	// sentAt[room][publisher][pack] is the pack's send time. It exists
	// before any receiver starts, so receivers reading it synchronise
	// with publishers through the atomics alone.
	sentAt    [][][]atomic.Int64
	receivers [][]*receiver // [room][subscriber]
	hists     []*Histogram  // one per sampled receiver; read once receivers are closed
	mu        sync.Mutex    // guards hists during setup
	closeOnce sync.Once
}

// RunFanout runs the fan-out scenario against a live server. Setup errors
// (bad config, failed dials) are returned; failures during the run (a
// publisher closed, a receiver dropped) are reported in the result.
func RunFanout(ctx context.Context, cfg FanoutConfig) (*FanoutResult, error) {
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
	conc := orDefault(cfg.DialConcurrency, defaultDialConcurrency)
	packs := presignCount(cfg.Presign, cfg.Rate, cfg.Warmup, cfg.Duration, cfg.Window)
	res := &FanoutResult{
		Scenario: "fanout",
		Config: FanoutSettings{
			URL: cfg.URL, Rooms: cfg.Rooms, Subscribers: cfg.Subscribers, Publishers: cfg.Publishers,
			Rate: cfg.Rate, Window: cfg.Window, PayloadBytes: cfg.PayloadBytes,
			WarmupSeconds: cfg.Warmup.Seconds(), DurationSecs: cfg.Duration.Seconds(),
			Samples: min(cfg.Samples, cfg.Rooms*cfg.Subscribers), PresignPerPubl: packs,
		},
		Warnings: []string{},
		Errors:   []string{},
	}

	// Every room gets the same chains: nodes do not name their room, so
	// one signing serves all rooms.
	t.log.Info("signing", "publishers", cfg.Publishers, "nodes_each", packs)
	signStart := time.Now()
	specs := make([]chainSpec, cfg.Publishers)
	for p := range specs {
		key, err := client.GenerateKey()
		if err != nil {
			return nil, err
		}
		specs[p] = chainSpec{key: key, publisher: uint32(p), packs: packs, packSize: 1,
			payloadBytes: cfg.PayloadBytes, path: fmt.Sprintf("bench/p%d", p)}
	}
	chains, err := signChains(ctx, specs)
	if err != nil {
		return nil, err
	}
	res.PresignSeconds = time.Since(signStart).Seconds()

	run := &fanoutRun{cfg: cfg, t: t, clk: newClock()}
	defer run.closeAll(conc)
	t.log.Info("connecting", "receivers", cfg.Rooms*cfg.Subscribers, "publishers", cfg.Rooms*cfg.Publishers)
	if err := run.dial(ctx, chains, conc); err != nil {
		return nil, err
	}

	// Publish, warm up, measure.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopAll()
	var wg sync.WaitGroup
	pubErrs := make([][]error, cfg.Rooms)
	pc := pacing{window: cfg.Window, rate: cfg.Rate, drain: cfg.Drain}
	for r, room := range run.pubs {
		pubErrs[r] = make([]error, len(room))
		for p, pub := range room {
			wg.Go(func() { pubErrs[r][p] = pub.run(ctx, stop, pc) })
		}
	}
	t.log.Info("warming up", "for", cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		stopAll()
		wg.Wait()
		return nil, err
	}
	winStart := run.clk.openWindow()
	if err := probe.start(); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	_ = self.start() // best effort: only informative
	delivered0, published0 := run.delivered(), run.published()
	t.log.Info("measuring", "for", cfg.Duration)
	werr := sleep(ctx, cfg.Duration)
	winEnd := run.clk.closeWindow()
	delivered1, published1 := run.delivered(), run.published()
	res.Delivered, res.Published = delivered1-delivered0, published1-published0
	if su, err := probe.stop(res.Delivered); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	} else {
		res.Server = su
	}
	res.Generator, _ = self.stop(res.Delivered)
	stopAll()
	wg.Wait()
	if werr != nil {
		return nil, werr
	}

	window := time.Duration(winEnd - winStart).Seconds()
	res.WindowSeconds = window
	res.DeliveredPerSec = float64(res.Delivered) / window
	res.PublishedPerSec = float64(res.Published) / window
	for r, room := range run.pubs {
		for p, pub := range room {
			if err := pubErrs[r][p]; err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("room %d publisher %d: %v", r, p, err))
			}
			res.Rejected += pub.rejectedNodes.Load()
			if s := pub.firstReject.Load(); s != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("room %d publisher %d: nodes rejected: %s", r, p, *s))
			}
			if pub.exhausted.Load() {
				res.PresignExhausted = true
			}
		}
	}
	if res.PresignExhausted {
		res.Warnings = append(res.Warnings, fmt.Sprintf("a publisher sent all %d pre-signed nodes before the window ended: rates are low; raise the pre-signed count", packs))
	}

	t.log.Info("draining")
	res.Receivers = run.drain(ctx, cfg.Drain)
	for r, room := range run.receivers {
		for s, rc := range room {
			if f := rc.failure(); f != "" {
				res.Errors = append(res.Errors, fmt.Sprintf("room %d receiver %d: %s", r, s, f))
			}
			if m := rc.firstErr.Load(); m != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("room %d receiver %d: error from server: %q", r, s, *m))
			}
		}
	}
	// Receivers record into their histograms until they stop reading.
	run.closeAll(conc)
	lat, ack := NewHistogram(), NewHistogram()
	for _, h := range run.hists {
		lat.Merge(h)
	}
	for _, room := range run.pubs {
		for _, pub := range room {
			ack.Merge(pub.ackHist)
		}
	}
	res.Latency, res.AckLatency = lat.Summary(), ack.Summary()
	if res.Latency.Count == 0 && res.Config.Samples > 0 {
		res.Warnings = append(res.Warnings, "no latency samples: no sampled receiver got a pack sent inside the window")
	}
	return res, nil
}

// dial connects every receiver (starting each as soon as it is welcomed,
// so that peer-joined events never pile up) and then every publisher.
func (run *fanoutRun) dial(ctx context.Context, chains []*chain, conc int) error {
	cfg := run.cfg
	total := cfg.Rooms * cfg.Subscribers
	samples := min(cfg.Samples, total)
	run.receivers = make([][]*receiver, cfg.Rooms)
	run.pubs = make([][]*publisher, cfg.Rooms)
	run.sentAt = make([][][]atomic.Int64, cfg.Rooms)
	for r := range cfg.Rooms {
		run.receivers[r] = make([]*receiver, cfg.Subscribers)
		run.pubs[r] = make([]*publisher, cfg.Publishers)
		run.sentAt[r] = make([][]atomic.Int64, cfg.Publishers)
		for p := range cfg.Publishers {
			run.sentAt[r][p] = make([]atomic.Int64, len(chains[p].frames))
		}
	}
	err := forEach(ctx, total, conc, func(ctx context.Context, i int) error {
		r, s := i/cfg.Subscribers, i%cfg.Subscribers
		key, err := client.GenerateKey()
		if err != nil {
			return err
		}
		rc, err := dialReceiver(ctx, run.t.room(r), key, fmt.Sprintf("sub-%d-%d", r, s))
		if err != nil {
			return err
		}
		// Spread the samples evenly over all receivers.
		if samples > 0 && (i*samples)%total < samples {
			rc.onPack = run.sampler(r)
		}
		run.receivers[r][s] = rc
		rc.start()
		return nil
	})
	if err != nil {
		return err
	}
	return forEach(ctx, cfg.Rooms*cfg.Publishers, conc, func(ctx context.Context, i int) error {
		r, p := i/cfg.Publishers, i%cfg.Publishers
		conn, err := client.Dial(ctx, run.t.room(r), client.Options{
			Key: chains[p].key, Subscribe: publisherSubscribe,
			PeerID: fmt.Sprintf("pub-%d-%d", r, p), PeerType: "bench",
		})
		if err != nil {
			return err
		}
		run.pubs[r][p] = newPublisher(conn, chains[p], run.clk, run.sentAt[r][p])
		return nil
	})
}

// sampler makes the pack handler of a sampled receiver in room r: decode
// the pack, look up each node's send time and record the latency.
func (run *fanoutRun) sampler(r int) func([]byte) {
	h := NewHistogram()
	run.mu.Lock()
	run.hists = append(run.hists, h)
	run.mu.Unlock()
	var dec sampleDecoder
	var now int64
	sentAt := run.sentAt[r]
	record := func(pub uint32, seq uint64) {
		if int(pub) >= len(sentAt) {
			return
		}
		sent := sentAt[pub]
		if seq >= uint64(len(sent)) {
			return
		}
		if at := sent[seq].Load(); at != 0 && run.clk.inWindow(at) {
			h.Record(time.Duration(now - at))
		}
	}
	return func(frame []byte) {
		now = run.clk.now()
		_, _ = dec.decode(frame, record) // a frame we cannot read gives no sample
	}
}

func (run *fanoutRun) delivered() uint64 {
	var n uint64
	for _, room := range run.receivers {
		for _, rc := range room {
			n += rc.frames.Load()
		}
	}
	return n
}

func (run *fanoutRun) published() uint64 {
	var n uint64
	for _, room := range run.pubs {
		for _, p := range room {
			n += p.ackedNodes.Load()
		}
	}
	return n
}

// drain waits until every live receiver has read every pack relayed in
// its room, or until the drain time ends.
func (run *fanoutRun) drain(ctx context.Context, d time.Duration) ReceiverSummary {
	expected := make([]uint64, len(run.pubs))
	for r, room := range run.pubs {
		for _, p := range room {
			expected[r] += p.relayed.Load()
		}
	}
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		short := 0
		for r, room := range run.receivers {
			for _, rc := range room {
				if !rc.ended() && rc.frames.Load() < expected[r] {
					short++
				}
			}
		}
		if short == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			deadline = time.Time{}
		}
	}
	sum := ReceiverSummary{MinReceived: math.MaxUint64, Sampled: len(run.hists)}
	for r, room := range run.receivers {
		for _, rc := range room {
			n := rc.frames.Load()
			sum.Receivers++
			sum.MinReceived = min(sum.MinReceived, n)
			sum.MaxReceived = max(sum.MaxReceived, n)
			switch {
			case rc.ended():
				sum.Failed++
			case n != expected[r]:
				sum.Incomplete++
			}
		}
	}
	if sum.Receivers == 0 {
		sum.MinReceived = 0
	}
	sum.Complete = sum.Failed == 0 && sum.Incomplete == 0
	return sum
}

// closeAll closes every connection the run opened and waits for their
// goroutines. Only the first call does anything.
func (run *fanoutRun) closeAll(conc int) {
	run.closeOnce.Do(func() { run.closeConns(conc) })
}

func (run *fanoutRun) closeConns(conc int) {
	var all []func()
	for _, room := range run.receivers {
		for _, rc := range room {
			if rc != nil {
				all = append(all, rc.close)
			}
		}
	}
	for _, room := range run.pubs {
		for _, p := range room {
			if p != nil {
				all = append(all, func() { _ = p.conn.Close() })
			}
		}
	}
	closeFuncs(all, conc)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("loadgen: interrupted: %w", ctx.Err())
	}
}

// orDefault returns v, or def when v is 0.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
