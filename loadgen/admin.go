package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/internal/grpccode"
)

// errorBackoff is how long a client waits after a failed call before the
// next one, so that a node that fails fast (no leader, connection refused)
// is not hammered in a tight loop that would only measure the generator.
const errorBackoff = 10 * time.Millisecond

// prepareConcurrency bounds the setup calls made before the run.
const prepareConcurrency = 16

// RunAdminWrites measures replicated writes through the admin API:
// every client calls PolicyService.SetPolicy back to back (default allow,
// one rule) on rooms of its own. Each call is a Raft apply, forwarded to
// the leader when the client's address is a follower. Setup errors (bad
// config, a first call that fails) are returned; failures during the run
// are counted by code in the result.
func RunAdminWrites(ctx context.Context, cfg AdminConfig) (*AdminResult, error) {
	return runAdmin(ctx, cfg, adminWrites)
}

// RunAdminReads measures reads through the admin API: every client calls
// PolicyService.GetPolicy on a room it set one policy entry on during
// setup (linearizable unless Stale), or ClusterService.GetStatus (Read
// AdminReadStatus), back to back.
func RunAdminReads(ctx context.Context, cfg AdminConfig) (*AdminResult, error) {
	return runAdmin(ctx, cfg, adminReads)
}

// adminRun is one admin scenario in progress.
type adminRun struct {
	cfg    AdminConfig
	mode   adminMode
	prefix string      // RoomPrefix + run id
	writeM metadata.MD // token only
	readM  metadata.MD // token, and the consistency when Stale
	rules  []*adminv1.PolicyRule
	clk    *clock
}

// adminClient is one client: a goroutine that calls in a loop.
type adminClient struct {
	idx    int
	addr   int // index into cfg.Addrs
	policy adminv1.PolicyServiceClient
	clus   adminv1.ClusterServiceClient
	roomN  int // which of its rooms it writes
	writes int // writes into that room so far
	hist   *Histogram
	ops    uint64
	errs   *adminErrors
}

func (c *adminClient) room(prefix string) string { return adminRoom(prefix, c.idx, c.roomN) }

func runAdmin(ctx context.Context, cfg AdminConfig, mode adminMode) (*AdminResult, error) {
	if cfg.Read == "" {
		cfg.Read = AdminReadPolicy
	}
	if cfg.RoomPrefix == "" {
		cfg.RoomPrefix = "bench"
	}
	if err := cfg.validate(mode); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	probe, err := newProcProbe(cfg.ServerPID)
	if err != nil {
		return nil, err
	}
	// The rule's author only has to be a well-formed Ed25519 key: nothing
	// is written under it.
	author, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("loadgen: generate rule author: %w", err)
	}
	r := &adminRun{
		cfg:    cfg,
		mode:   mode,
		prefix: runPrefix(cfg.RoomPrefix),
		writeM: metadata.Pairs("authorization", "Bearer "+cfg.Token),
		rules:  []*adminv1.PolicyRule{{PathGlob: "bench/**", CanWrite: []string{hex.EncodeToString(author)}}},
		clk:    newClock(),
	}
	r.readM = r.writeM
	if mode == adminReads && cfg.Stale {
		r.readM = metadata.Join(r.writeM, metadata.Pairs("nodalmerge-consistency", "stale"))
	}
	res := r.newResult()

	conns, clients, err := r.connect()
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	res.Config.Connections = len(conns)
	log.Info("preparing", "clients", cfg.Clients, "connections", len(conns), "addresses", len(cfg.Addrs))
	if err := forEach(ctx, len(clients), prepareConcurrency, func(ctx context.Context, i int) error {
		return r.prepare(ctx, clients[i])
	}); err != nil {
		return nil, err
	}

	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopAll()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { r.loop(ctx, stop, c) })
	}
	log.Info("warming up", "for", cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		stopAll()
		wg.Wait()
		return nil, err
	}
	self := newSelfProbe()
	winStart := r.clk.openWindow()
	if err := probe.start(); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
	_ = self.start() // best effort: only informative
	log.Info("measuring", "for", cfg.Duration)
	werr := sleep(ctx, cfg.Duration)
	winEnd := r.clk.closeWindow()
	// Usage is read before the clients stop, so it covers the window the
	// calls were counted in, not their wind-down.
	server, perr := probe.stop(0)
	generator, _ := self.stop(0)
	stopAll()
	wg.Wait()
	if werr != nil {
		return nil, werr
	}
	if perr != nil {
		res.Warnings = append(res.Warnings, perr.Error())
	}
	r.finish(res, clients, time.Duration(winEnd-winStart), server, generator)
	return res, nil
}

// connect makes the connections and the clients: client i goes to
// Addrs[i mod len(Addrs)], and the clients of one address share its
// connections ClientsPerConn at a time. Connections are lazy; prepare's
// first calls establish them.
func (r *adminRun) connect() ([]*grpc.ClientConn, []*adminClient, error) {
	cfg := r.cfg
	creds := grpc.WithTransportCredentials(credentials.NewTLS(cfg.TLS.Clone()))
	byAddr := make([][]*adminClient, len(cfg.Addrs))
	clients := make([]*adminClient, cfg.Clients)
	for i := range clients {
		c := &adminClient{idx: i, addr: i % len(cfg.Addrs), hist: NewHistogram(), errs: newAdminErrors()}
		clients[i] = c
		byAddr[c.addr] = append(byAddr[c.addr], c)
	}
	var conns []*grpc.ClientConn
	for a, group := range byAddr {
		for k := 0; k < len(group); k += cfg.ClientsPerConn {
			conn, err := grpc.NewClient(cfg.Addrs[a], creds)
			if err != nil {
				return conns, nil, fmt.Errorf("loadgen: admin address %s: %w", cfg.Addrs[a], err)
			}
			conns = append(conns, conn)
			for _, c := range group[k:min(k+cfg.ClientsPerConn, len(group))] {
				c.policy = adminv1.NewPolicyServiceClient(conn)
				c.clus = adminv1.NewClusterServiceClient(conn)
			}
		}
	}
	return conns, clients, nil
}

// prepare makes each client's first call before the clock starts: it
// opens the connections (TLS handshakes are not part of any latency), and
// a wrong address, certificate, token or capability fails the run here,
// with the server's reason, rather than as a table full of errors. A
// policy read client first sets one entry on its room, so every read
// answers a real one-entry policy.
func (r *adminRun) prepare(ctx context.Context, c *adminClient) error {
	if r.mode == adminReads && r.cfg.Read == AdminReadPolicy {
		if err := r.setPolicy(ctx, c); err != nil {
			return r.setupError(c, "set-policy", err)
		}
	}
	if err := r.call(ctx, c); err != nil {
		return r.setupError(c, r.command(), err)
	}
	return nil
}

func (r *adminRun) setupError(c *adminClient, command string, err error) error {
	st := status.Convert(err)
	return fmt.Errorf("loadgen: client %d: first %s call to %s failed: %s: %s",
		c.idx, command, r.cfg.Addrs[c.addr], grpccode.Name(st.Code()), st.Message())
}

// command is the name of the control-plane command the run measures.
func (r *adminRun) command() string {
	switch {
	case r.mode == adminWrites:
		return "set-policy"
	case r.cfg.Read == AdminReadStatus:
		return "cluster.status"
	}
	return "get-policy"
}

// call makes one call of the run's kind.
func (r *adminRun) call(ctx context.Context, c *adminClient) error {
	if r.mode == adminWrites {
		if c.writes == r.cfg.RoomWrites {
			c.roomN, c.writes = c.roomN+1, 0
		}
		c.writes++
		return r.setPolicy(ctx, c)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, r.readM), r.cfg.Timeout)
	defer cancel()
	var err error
	if r.cfg.Read == AdminReadStatus {
		_, err = c.clus.GetStatus(ctx, &adminv1.GetStatusRequest{})
	} else {
		_, err = c.policy.GetPolicy(ctx, &adminv1.GetPolicyRequest{Room: c.room(r.prefix)})
	}
	return err
}

func (r *adminRun) setPolicy(ctx context.Context, c *adminClient) error {
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, r.writeM), r.cfg.Timeout)
	defer cancel()
	_, err := c.policy.SetPolicy(ctx, &adminv1.SetPolicyRequest{Room: c.room(r.prefix), Default: "allow", Rules: r.rules})
	return err
}

// loop calls until stop. A call counts (rate and latency) when it
// completes inside the window; a failed call counts by code when it fails
// before the window ends (warm-up included: a run whose warm-up saw
// errors is suspect too).
func (r *adminRun) loop(ctx context.Context, stop <-chan struct{}, c *adminClient) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		start := r.clk.now()
		err := r.call(ctx, c)
		end := r.clk.now()
		if ctx.Err() != nil {
			return // interrupted: the run reports that, not these calls
		}
		if err == nil {
			if r.clk.inWindow(end) {
				c.hist.Record(time.Duration(end - start))
				c.ops++
			}
			continue
		}
		if r.clk.winEnd.Load() == 0 {
			c.errs.add(err)
		}
		t := time.NewTimer(errorBackoff)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
