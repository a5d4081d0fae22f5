package dataplane

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// Server is the data plane's http.Handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	pubHex    string
	validator *history.Validator
	upgrader  websocket.Upgrader
	mux       *http.ServeMux
	rooms     *registry

	mu       sync.Mutex
	closed   bool
	active   int // handlers past the shutdown check, still running
	idle     chan struct{}
	sessions map[*session]struct{}
}

// Stats is a snapshot of the live rooms.
type Stats struct {
	Rooms    int // live rooms (with at least one session)
	Sessions int // joined sessions
	Peers    int // distinct public keys, summed over rooms
	Nodes    int // nodes stored in the live rooms
}

// NewServer validates cfg and returns a Server ready to serve.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		pubHex:    hex.EncodeToString(cfg.ServerKey.Public().(ed25519.PublicKey)),
		validator: &history.Validator{Now: cfg.Now},
		idle:      make(chan struct{}),
		sessions:  make(map[*session]struct{}),
	}
	s.upgrader = websocket.Upgrader{
		// The origin policy is applied before upgrading (originAllowed),
		// with an explanatory answer.
		CheckOrigin: func(*http.Request) bool { return true },
		// Idle sessions hold no write buffer between messages.
		WriteBufferPool: &sync.Pool{},
	}
	s.rooms = newRegistry(s, cfg.RoomStore)
	s.mux = http.NewServeMux()
	// {room...} rather than {room} so that an empty or slash-containing
	// name gets the 400 that explains the rule instead of a bare 404.
	s.mux.HandleFunc("GET /ws/{room...}", s.serveWS)
	return s, nil
}

// ServeHTTP serves GET /ws/{room}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	if !validRoomName(name) {
		http.Error(w, roomNameHelp, http.StatusBadRequest)
		return
	}
	if !s.originAllowed(r) {
		http.Error(w, "origin not allowed: a browser page may connect only from this host or an origin listed in --allowed-origins", http.StatusForbidden)
		return
	}
	if !s.begin() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.end()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// gorilla has answered the request already.
		s.log.Debug("upgrade failed", "room", name, "remote", r.RemoteAddr, "err", err)
		return
	}
	sess := newSession(s, conn, name, s.log.With("room", name, "remote", r.RemoteAddr))
	if !s.track(sess) {
		sess.abort(closeGoingAway, reasonGoingAway)
	}
	defer s.untrack(sess)
	sess.run()
	sess.log.Debug("session closed", "pubkey", sess.pubkey, "code", sess.closeCode)
}

// begin admits one more handler unless shutting down.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
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

// track registers a session for Shutdown; false if shutdown began since
// begin (the caller then closes it right away).
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
// away" and waits until all their goroutines have ended. When ctx ends
// first, the remaining connections are dropped, the goroutines are still
// waited for (they end at once), and ctx's error is returned. It may be
// called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.signalIdle()
	s.mu.Unlock()
	for _, sess := range s.snapshot() {
		sess.abort(closeGoingAway, reasonGoingAway)
	}
	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
	}
	for _, sess := range s.snapshot() {
		_ = sess.conn.Close()
	}
	<-s.idle
	return fmt.Errorf("dataplane: shutdown: sessions did not close in time: %w", ctx.Err())
}

// Stats reports the live rooms.
func (s *Server) Stats() Stats {
	var st Stats
	for _, r := range s.rooms.live() {
		sessions, peers, nodes := r.counts()
		st.Rooms++
		st.Sessions += sessions
		st.Peers += peers
		st.Nodes += nodes
	}
	return st
}
