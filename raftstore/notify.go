package raftstore

import "sync"

// notifier is a broadcast: wait returns a channel that the next broadcast
// closes. The channel is made only when someone waits, so an fsm with no
// waiters pays one uncontended lock per apply and no allocation.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}
