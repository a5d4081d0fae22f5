package raftstore

import (
	"log/slog"
	"runtime/debug"
	"sync"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// event is one notification for observers: an applied command, or a
// snapshot restore (restore == true).
type event struct {
	index   uint64
	cmd     *statev1.Command
	restore bool
}

// dispatcher delivers OnApply and OnRestore to observers from one
// goroutine, in the order the FSM produced them, never under the FSM lock
// and never concurrently with itself. The FSM only appends to an unbounded
// queue, so a slow observer delays its own notifications but never Raft:
// the backlog (Status.ObserverBacklog) is bounded by how far the observer
// lags, and commands are small and infrequent. Events still queued when
// the store closes are dropped: the process is shutting down, and a new
// process learns the state from reads (OnRestore or a fresh start).
type dispatcher struct {
	logger    *slog.Logger
	onApply   func(index uint64, cmd *statev1.Command)
	onRestore func()

	mu    sync.Mutex
	queue []event

	wake chan struct{} // 1-buffered: "the queue may be non-empty"
	stop chan struct{}
	done chan struct{}
}

// newDispatcher returns nil when there is nothing to deliver.
func newDispatcher(logger *slog.Logger, onApply func(uint64, *statev1.Command), onRestore func()) *dispatcher {
	if onApply == nil && onRestore == nil {
		return nil
	}
	d := &dispatcher{
		logger:    logger,
		onApply:   onApply,
		onRestore: onRestore,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go d.run()
	return d
}

func (d *dispatcher) enqueue(e event) {
	if e.restore && d.onRestore == nil || !e.restore && d.onApply == nil {
		return
	}
	d.mu.Lock()
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// backlog is how many events wait for delivery.
func (d *dispatcher) backlog() int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue)
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				d.mu.Unlock()
				break
			}
			e := d.queue[0]
			d.queue[0] = event{}
			d.queue = d.queue[1:]
			d.mu.Unlock()
			select {
			case <-d.stop:
				return
			default:
			}
			d.deliver(e)
		}
	}
}

// deliver calls one observer. A panicking observer is logged and skipped:
// it must not take the node's consensus down with it.
func (d *dispatcher) deliver(e event) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("raftstore observer panicked", "index", e.index, "restore", e.restore,
				"panic", r, "stack", string(debug.Stack()))
		}
	}()
	if e.restore {
		d.onRestore()
		return
	}
	d.onApply(e.index, e.cmd)
}

// close stops delivery and waits for a callback in progress to return.
func (d *dispatcher) close() {
	if d == nil {
		return
	}
	close(d.stop)
	<-d.done
}
