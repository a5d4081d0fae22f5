package dataplane

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// retryAfterSeconds is the Retry-After of a 503 at the connection limit:
// long enough that a reconnect storm spreads out, short enough that a
// client comes back once load drops.
const retryAfterSeconds = 5

// Server is the data plane's http.Handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	pubHex    string
	validator *history.Validator
	verifier  *verifier
	// maxCommitBatch bounds the packs of one commit batch (ingest.go).
	maxCommitBatch int
	upgrader       websocket.Upgrader
	mux            *http.ServeMux
	rooms          *registry
	metrics        *metrics
	limits         limits
	bufs           *sync.Pool // bufConn output buffers
	scratch        *sync.Pool // protobuf of a pack being encoded (wire.go)

	mu       sync.Mutex
	closed   bool
	active   int // handlers past the shutdown check, still running
	nextID   uint64
	idle     chan struct{}
	sessions map[*session]struct{}
}

// Stats is a snapshot of the rooms in memory.
type Stats struct {
	Rooms    int // rooms with at least one session
	Loaded   int // rooms in memory, including idle ones not yet unloaded
	Sessions int // joined sessions
	Peers    int // distinct public keys, summed over rooms
	Nodes    int // nodes stored in the loaded rooms
}

// NewServer validates cfg and returns a Server ready to serve.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		pubHex:    hex.EncodeToString(cfg.ServerKey.Public().(ed25519.PublicKey)),
		validator: &history.Validator{Now: cfg.Now},
		metrics:   m,
		limits:    limits{nodes: float64(cfg.PeerRateNodes), bytes: float64(cfg.PeerRateBytes)},
		bufs:      newBufferPool(),
		scratch:   newScratchPool(),
		idle:      make(chan struct{}),
		sessions:  make(map[*session]struct{}),
	}
	s.upgrader = websocket.Upgrader{
		// The origin policy is applied before upgrading (originAllowed),
		// with an explanatory answer.
		CheckOrigin: func(*http.Request) bool { return true },
		// Data frames bypass gorilla's write path (bufConn.appendText);
		// its buffer only serves control frames, so idle sessions hold
		// none between them.
		WriteBufferPool: &sync.Pool{},
	}
	s.verifier = newVerifier(s.validator)
	s.maxCommitBatch = min(max(cfg.BroadcastCapacity/4, 1), 256)
	s.rooms = newRegistry(s, cfg.RoomStore, cfg.IdleTimeout)
	s.mux = http.NewServeMux()
	// {room...} rather than {room} so that an empty or slash-containing
	// name gets the 400 that explains the rule instead of a bare 404.
	s.mux.HandleFunc("GET /ws/{room...}", s.serveWS)
	return s, nil
}

// ServeHTTP serves GET /ws/{room}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	r = s.viaProxy(r) // client address and scheme, believed from trusted proxies only
	name := r.PathValue("room")
	if !validRoomName(name) {
		http.Error(w, roomNameHelp, http.StatusBadRequest)
		return
	}
	if !s.originAllowed(r) {
		http.Error(w, "origin not allowed: a browser page may connect only from this host or an origin listed in --allowed-origins", http.StatusForbidden)
		return
	}
	id, status := s.begin()
	switch status {
	case beginShutdown:
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	case beginFull:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		http.Error(w, "server at its connection limit (--max-connections); retry later", http.StatusServiceUnavailable)
		return
	}
	defer s.end()
	hw := &hijackWriter{ResponseWriter: w, pool: s.bufs}
	conn, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		// gorilla has answered the request already.
		s.log.Debug("upgrade failed", "room", name, "remote", r.RemoteAddr, "err", err)
		return
	}
	// The 101 answer is in the buffer: send it now.
	if err := hw.conn.flush(s.cfg.HandshakeTimeout); err != nil {
		s.log.Debug("upgrade answer not sent", "room", name, "remote", r.RemoteAddr, "err", err)
		_ = conn.Close()
		return
	}
	sess := newSession(s, id, conn, hw.conn, name, r.RemoteAddr, s.log.With("room", name, "remote", r.RemoteAddr))
	if !s.track(sess) {
		sess.abort(closeGoingAway, reasonGoingAway)
	}
	defer s.untrack(sess)
	sess.run()
	sess.log.Debug("session closed", "pubkey", sess.pubkey, "code", sess.closeCode)
}

type beginStatus int

const (
	beginOK beginStatus = iota
	beginShutdown
	beginFull
)

// begin admits one more connection unless shutting down or at
// MaxConnections, and numbers it.
func (s *Server) begin() (uint64, beginStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, beginShutdown
	}
	if s.cfg.MaxConnections > 0 && s.active >= s.cfg.MaxConnections {
		return 0, beginFull
	}
	s.active++
	s.nextID++
	return s.nextID, beginOK
}

func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.signalIdle()
}

// signalIdle closes idle once shut down with no handler left. Caller holds mu.
func (s *Server) signalIdle() {
	if s.closed && s.active == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

// track registers a session for Shutdown and CloseSessions; false if
// shutdown began since begin (the caller then closes it right away).
func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sess] = struct{}{}
	return !s.closed
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

func (s *Server) snapshot() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// Shutdown stops accepting sessions, closes every session with 1001 "going
// away", waits until all their goroutines have ended, then stops the
// idle-unload timers and waits for RoomStore calls in flight, then stops
// the verification workers, so that the caller may close the RoomStore as
// soon as it returns. When ctx ends first, the remaining connections are
// dropped, the goroutines are still waited for (they end at once), and
// ctx's error is returned. It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.signalIdle()
	s.mu.Unlock()
	for _, sess := range s.snapshot() {
		sess.abort(closeGoingAway, reasonGoingAway)
	}
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		for _, sess := range s.snapshot() {
			_ = sess.conn.Close()
		}
		<-s.idle
		err = fmt.Errorf("dataplane: shutdown: sessions did not close in time: %w", ctx.Err())
	}
	s.rooms.close()
	// Every session has ended, so no pack of theirs is still verifying;
	// a Publish racing with Shutdown verifies on its own goroutine.
	s.verifier.Close()
	return err
}

// CloseSessions closes every joined session for which match returns true
// with code and reason, skipping anything still queued to it, and returns
// how many it closed. Sessions still in their handshake are not seen. A
// close with 4002 counts into nodalmerge_token_expired_disconnects_total.
func (s *Server) CloseSessions(match func(SessionInfo) bool, code int, reason string) int {
	return s.CloseSessionsBy(func(i SessionInfo) (bool, int, string) { return match(i), code, reason })
}

// EvictPeer closes every session of pubkey (hex, any case) in room with
// 1008 "evicted" and returns how many it closed.
func (s *Server) EvictPeer(room, pubkey string) int {
	pk, err := hex.DecodeString(pubkey)
	if err != nil {
		return 0
	}
	norm := hex.EncodeToString(pk)
	return s.CloseSessions(func(i SessionInfo) bool { return i.Room == room && i.Pubkey == norm }, closePolicy, reasonEvicted)
}

// Stats reports the rooms in memory.
func (s *Server) Stats() Stats {
	var st Stats
	for _, r := range s.rooms.live() {
		sessions, peers, nodes := r.counts()
		st.Loaded++
		if sessions > 0 {
			st.Rooms++
		}
		st.Sessions += sessions
		st.Peers += peers
		st.Nodes += nodes
	}
	return st
}
