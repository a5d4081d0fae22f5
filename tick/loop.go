package tick

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// errNotAccepted is a publish whose node the room refused (for example a
// room policy that does not let the server write world/).
var errNotAccepted = errors.New("tick node not accepted")

// loop is one room's tick goroutine and the state it owns.
type loop struct {
	sched  schedule
	cfg    *Config
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	store   history.Store
	release func()
	mat     *Materializer
	// dirty is set when nodes were applied since the world was last found
	// up to date; a tick without new nodes and not dirty does no work.
	dirty   bool
	lastErr string
}

// run ticks until ctx ends. It first waits for the room's previous loop
// (cancelled, so it finishes promptly) whatever ctx says, so that done
// closing means every earlier loop of the room has finished too.
func (l *loop) run(ctx context.Context, prev <-chan struct{}) {
	defer close(l.done)
	if prev != nil {
		<-prev
	}
	defer func() {
		if l.release != nil {
			l.release()
		}
		l.log.Info("tick: stopped")
	}()
	t := time.NewTicker(l.sched.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.tick(ctx); err != nil {
			l.report(err)
		} else {
			l.lastErr = ""
		}
	}
}

// report logs a failure once until the failure changes or a tick succeeds,
// so a room that keeps refusing tick nodes does not log at tick rate.
func (l *loop) report(err error) {
	if msg := err.Error(); msg != l.lastErr {
		l.lastErr = msg
		l.log.Warn("tick: failed; retrying every interval", "err", err)
	}
}

// tick is one round: catch up on the room, plan, and publish one node.
func (l *loop) tick(ctx context.Context) error {
	if l.store == nil {
		st, release, err := l.cfg.Rooms.Open(l.sched.room)
		if err != nil {
			return fmt.Errorf("tick: open room %s: %w", l.sched.room, err)
		}
		l.store, l.release, l.mat = st, release, NewMaterializer()
	}
	if l.mat.Update(l.store) > 0 {
		l.dirty = true
	}
	if !l.dirty {
		return nil
	}
	ops := Plan(l.mat, l.sched.prefix)
	if len(ops) == 0 {
		l.dirty = false
		return nil
	}
	n, id, err := l.node(ops)
	if err != nil {
		return err
	}
	accepted, err := l.cfg.Rooms.Publish(ctx, l.sched.room, []*syncv1.Node{n})
	switch {
	case ctx.Err() != nil:
		return nil // stopping; the next runner starts from the room as it is
	case err != nil:
		return fmt.Errorf("tick: publish to room %s: %w", l.sched.room, err)
	case accepted != 1:
		return fmt.Errorf("tick: publish node %s to room %s: %w", id, l.sched.room, errNotAccepted)
	}
	// The world now matches every intent: our own node comes back through
	// the next Update and makes the tick check once more, finding nothing.
	l.dirty = false
	l.log.Debug("tick: wrote world", "node", id.String(), "ops", len(ops))
	return nil
}

// node signs a tick node on top of the room's current frontier, one
// Lamport above the room's highest, so its writes win over every write it
// has seen.
func (l *loop) node(ops []*syncv1.Op) (*syncv1.Node, history.ID, error) {
	front := l.store.Frontier()
	parents := make([][]byte, len(front))
	for i, id := range front {
		parents[i] = id[:]
	}
	tx := &syncv1.Transaction{
		Author:  l.cfg.ServerKey.Public().(ed25519.PublicKey),
		Lamport: l.store.MaxLamport() + 1,
		WallMs:  uint64(max(l.cfg.Now().UnixMilli(), 0)),
		Parents: parents,
		Ops:     ops,
	}
	n, id, err := history.NewNode(l.cfg.ServerKey, tx)
	if err != nil {
		return nil, history.ID{}, fmt.Errorf("tick: sign node for room %s: %w", l.sched.room, err)
	}
	return n, id, nil
}
