package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/nodalmerge/nodalmerge-go/client"
	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// survivorTimeout bounds the round trip that checks a session of a peer
// that was not revoked is still served.
const survivorTimeout = 10 * time.Second

// RunRevoke runs the revocation-latency scenario (see RevokeConfig).
// Setup failures (bad config, an admin call or a dial that fails) are
// returned; what goes wrong after the revoke call (a session that does not
// close, closes with another code, or a bystander that is closed) is
// counted in the result, and the run goes on with the next round.
func RunRevoke(ctx context.Context, cfg RevokeConfig) (*RevokeResult, error) {
	bases, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, err := parseRoomKeySeed(cfg.RoomKeySeed)
	if err != nil {
		return nil, err
	}
	prefix, _ := checkRoomPrefix(cfg.RoomPrefix) // validated
	conn, err := cfg.Admin.dial(0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := &revokeRun{
		cfg: cfg, bases: bases, key: key, conn: conn, log: log,
		tokens: adminv1.NewTokenServiceClient(conn), prefix: runPrefix(prefix),
		res: newRevokeResult(cfg, key.kid), all: NewHistogram(), last: NewHistogram(), call: NewHistogram(),
		nodes: make([]*Histogram, len(bases)), errs: &stormErrors{counts: map[string]int{}},
	}
	for i := range r.nodes {
		r.nodes[i] = NewHistogram()
	}
	for round := range cfg.Rounds {
		if err := r.round(ctx, round); err != nil {
			return nil, err
		}
	}
	r.finish()
	return r.res, nil
}

// revokeRun is a revoke run in progress.
type revokeRun struct {
	cfg    RevokeConfig
	bases  []string
	key    *roomKey
	conn   *grpc.ClientConn
	tokens adminv1.TokenServiceClient
	prefix string
	log    *slog.Logger
	res    *RevokeResult
	// Latencies: per revoked session (all, and per node), per round
	// (last close, and the Revoke call itself).
	all, last, call *Histogram
	nodes           []*Histogram
	errs            *stormErrors
}

// revokePeerCreds is one peer of a round: its key and its token.
type revokePeerCreds struct {
	key   ed25519.PrivateKey
	token json.RawMessage
	id    string // room token id
}

// round runs round n: lock a fresh room, open the sessions, revoke peer 0,
// wait for its sessions to close and check the others.
func (r *revokeRun) round(ctx context.Context, n int) error {
	cfg := r.cfg
	room := revokeRoom(r.prefix, n)
	if err := r.key.lockRooms(ctx, &cfg.Admin, r.conn, setupCallTimeout, []string{room}); err != nil {
		return err
	}
	// Every node must have applied the lock (and so the key) before a
	// session is dialled there.
	if err := forEach(ctx, len(r.bases), len(r.bases), func(ctx context.Context, i int) error {
		return awaitLocked(ctx, r.bases[i]+room, setupCallTimeout)
	}); err != nil {
		return err
	}
	peers, err := r.signPeers(room)
	if err != nil {
		return err
	}
	sessions := make([]*revokeSession, cfg.Sessions)
	defer func() {
		fns := make([]func(), 0, len(sessions))
		for _, s := range sessions {
			if s != nil {
				fns = append(fns, s.close)
			}
		}
		closeFuncs(fns, 64)
	}()
	r.log.Info("opening sessions", "round", n, "room", room, "sessions", cfg.Sessions, "peers", cfg.Peers)
	err = forEach(ctx, cfg.Sessions, defaultDialConcurrency, func(ctx context.Context, i int) error {
		node, peer := revokePlace(i, n, len(r.bases), cfg.Peers)
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		c, err := client.Dial(dctx, r.bases[node]+room, client.Options{
			Key: peers[peer].key, Token: peers[peer].token, Subscribe: publisherSubscribe,
			PeerID: fmt.Sprintf("revoke-%d", i), PeerType: "bench",
		})
		if err != nil {
			return fmt.Errorf("loadgen: round %d: session %d on %s: %w", n, i, cfg.URLs[node], err)
		}
		sessions[i] = newRevokeSession(c, node, peer == 0)
		return nil
	})
	if err != nil {
		return err
	}
	// Every session has its welcome (Dial returned): the server has
	// admitted all of them. Any that already ended is a setup failure.
	for i, s := range sessions {
		if s.ended() {
			_, how := s.revokedClose()
			return fmt.Errorf("loadgen: round %d: session %d on %s %s before the revoke call", n, i, cfg.URLs[s.node], how)
		}
	}

	req := &adminv1.RevokeRequest{}
	switch cfg.By {
	case RevokeByToken:
		req.TokenId, req.Room = peers[0].id, room
	case RevokeByPeer:
		req.Room, req.PeerPubkey = room, hex.EncodeToString(peers[0].key.Public().(ed25519.PublicKey))
	}
	cctx, cancel := context.WithTimeout(cfg.Admin.outgoing(ctx), setupCallTimeout)
	t0 := time.Now()
	_, err = r.tokens.Revoke(cctx, req)
	callTime := time.Since(t0)
	cancel()
	if err != nil {
		return callError("token.revoke", room, cfg.Admin.Addrs[0], err)
	}
	r.call.Record(callTime)
	r.log.Info("revoked", "round", n, "by", cfg.By, "call", callTime)

	rr := RevokeRound{Round: n, Room: room, RevokeCallMs: ms(callTime)}
	r.awaitTargets(ctx, n, sessions, t0, &rr)
	r.checkBystanders(ctx, n, sessions, &rr)
	r.res.Rounds = append(r.res.Rounds, rr)
	return ctx.Err()
}

// signPeers makes the round's peer keys and signs each a token for room.
func (r *revokeRun) signPeers(room string) ([]revokePeerCreds, error) {
	expiry := time.Now().Add(tokenLifetime)
	peers := make([]revokePeerCreds, r.cfg.Peers)
	for p := range peers {
		k, err := client.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("loadgen: generate peer key: %w", err)
		}
		raw, tok, err := r.key.sign(room, k.Public().(ed25519.PublicKey), expiry)
		if err != nil {
			return nil, err
		}
		peers[p] = revokePeerCreds{key: k, token: raw, id: tok.ID()}
	}
	return peers, nil
}

// awaitTargets waits until every session of the revoked peer has ended or
// CloseTimeout has passed since the call, and records each close.
func (r *revokeRun) awaitTargets(ctx context.Context, n int, sessions []*revokeSession, t0 time.Time, rr *RevokeRound) {
	wctx, cancel := context.WithDeadline(ctx, t0.Add(r.cfg.CloseTimeout))
	defer cancel()
	var last time.Duration
	for _, s := range sessions {
		if !s.target {
			continue
		}
		rr.Revoked++
		select {
		case <-s.done:
		case <-wctx.Done():
		}
		if !s.ended() {
			rr.NotClosed++
			continue
		}
		if ok, how := s.revokedClose(); !ok {
			rr.WrongClose++
			r.errs.add(fmt.Errorf("a revoked session on %s %s, want %d %q", r.cfg.URLs[s.node], how, closeRevoked, closeRevokedText))
			continue
		}
		lat := s.endAt.Sub(t0)
		rr.Closed++
		r.all.Record(lat)
		r.nodes[s.node].Record(lat)
		last = max(last, lat)
	}
	if rr.NotClosed > 0 {
		r.errs.add(fmt.Errorf("round %d: %d of %d revoked sessions still open %s after the revoke call", n, rr.NotClosed, rr.Revoked, r.cfg.CloseTimeout))
	}
	if rr.Closed > 0 {
		rr.LastCloseMs = ms(last)
		if rr.NotClosed == 0 && rr.WrongClose == 0 {
			r.last.Record(last)
		}
	}
}

// checkBystanders makes a round trip on every session of the other peers,
// after every revoked session has closed: each must still be served. It
// cannot prove that no close is still on its way, but a node that closes
// sessions when it applies a revocation has applied it by then (its own
// revoked sessions are closed), so a wrong match would show.
func (r *revokeRun) checkBystanders(ctx context.Context, n int, sessions []*revokeSession, rr *RevokeRound) {
	var others []*revokeSession
	for _, s := range sessions {
		if !s.target {
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return
	}
	rr.Bystanders = len(others)
	errs := make([]error, len(others))
	_ = forEach(ctx, len(others), defaultDialConcurrency, func(ctx context.Context, i int) error {
		cctx, cancel := context.WithTimeout(ctx, survivorTimeout)
		defer cancel()
		errs[i] = others[i].roundTrip(cctx)
		return nil
	})
	for i, err := range errs {
		if err != nil {
			rr.BystandersLost++
			r.errs.add(fmt.Errorf("a session of a peer that was not revoked, on %s: %w", r.cfg.URLs[others[i].node], err))
		}
	}
	if rr.BystandersLost > 0 {
		r.errs.add(fmt.Errorf("round %d: %d of %d sessions of other peers lost", n, rr.BystandersLost, rr.Bystanders))
	}
}
