package tick

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// MinInterval is the shortest tick interval a schedule may ask for
// (TickService refuses less); shorter schedules are skipped with a warning
// rather than run hot.
const MinInterval = 10 * time.Millisecond

// Rooms is the part of the data plane a tick needs. The node wires an
// adapter over its room registry.
type Rooms interface {
	// Open returns the room's history and a func that releases the room
	// (the room stays loaded until then).
	Open(room string) (history.Store, func(), error)
	// Publish ingests nodes as the server (full validation) and relays the
	// accepted ones to the room's sessions; it answers how many were
	// accepted.
	Publish(ctx context.Context, room string, nodes []*syncv1.Node) (int, error)
}

// Config configures a Runner.
type Config struct {
	// ServerKey signs tick nodes; required.
	ServerKey ed25519.PrivateKey
	// Rooms opens and publishes to rooms; required.
	Rooms Rooms
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock for tick nodes' wall_ms; nil means time.Now.
	Now func() time.Time
}

// Runner runs the tick of every scheduled room while this node is active
// (the Raft leader): one goroutine per room, started and stopped by Sync.
// It is safe for concurrent use.
type Runner struct {
	cfg Config

	mu      sync.Mutex
	running map[string]*loop
	// tail is the latest loop started for each room, running or still
	// finishing after a cancel: the next loop for the room waits for it.
	tail    map[string]*loop
	stopped bool
}

// NewRunner returns a Runner with no ticks running. It panics when
// ServerKey or Rooms is missing: that is a wiring bug, not a runtime
// condition.
func NewRunner(cfg Config) *Runner {
	if len(cfg.ServerKey) != ed25519.PrivateKeySize {
		panic("tick: NewRunner: ServerKey must be an Ed25519 private key")
	}
	if cfg.Rooms == nil {
		panic("tick: NewRunner: Rooms is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg, running: make(map[string]*loop), tail: make(map[string]*loop)}
}

// Sync makes the running ticks match the schedules: with active false
// (this node is not the leader) every tick stops; otherwise each valid
// schedule runs, a changed schedule restarts, and rooms no longer listed
// stop. The node calls it after every applied command and on every
// leadership change, so "exactly one node runs a room's tick" follows from
// there being one leader.
//
// Sync never blocks on a tick in progress (it may be called from the
// apply path, which a tick's publish may itself be waiting on): it cancels
// the loops it stops, and a loop started for a room waits until the room's
// previous loop has finished, so two loops never tick one room at once.
// It does nothing after Stop.
func (r *Runner) Sync(ticks []*statev1.TickSchedule, active bool) {
	want := make(map[string]schedule, len(ticks))
	if active {
		for _, t := range ticks {
			s := scheduleOf(t)
			if err := s.validate(); err != nil {
				r.cfg.Logger.Warn("tick: schedule skipped", "room", s.room, "err", err)
				continue
			}
			want[s.room] = s
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	for room, l := range r.running {
		if s, ok := want[room]; !ok || s != l.sched {
			l.cancel()
			delete(r.running, room)
		}
	}
	for room, s := range want {
		if _, ok := r.running[room]; ok {
			continue
		}
		var prev <-chan struct{}
		if t := r.tail[room]; t != nil {
			prev = t.done
		}
		l := r.start(s, prev)
		r.running[room], r.tail[room] = l, l
		r.cfg.Logger.Info("tick: started", "room", room, "interval", s.interval, "intent_prefix", s.prefix)
	}
	for room, t := range r.tail {
		if r.running[room] != t && closed(t.done) {
			delete(r.tail, room)
		}
	}
}

// Running returns the rooms whose tick runs on this node, in no order.
func (r *Runner) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.running))
	for room := range r.running {
		out = append(out, room)
	}
	return out
}

// Stop stops every tick and waits until all have finished; later Syncs do
// nothing.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for _, l := range r.tail {
		l.cancel()
	}
	// Each loop finishes only after its room's previous loop, so waiting
	// for the tails waits for everything.
	for room, l := range r.tail {
		<-l.done
		delete(r.tail, room)
	}
	clear(r.running)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (r *Runner) start(s schedule, prev <-chan struct{}) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{
		sched:  s,
		cfg:    &r.cfg,
		log:    r.cfg.Logger.With("room", s.room),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go l.run(ctx, prev)
	return l
}
