package dataplane

// A session's outgoing queue is a slice under its own mutex with a
// one-slot wake channel, not a buffered channel of items. A channel hands
// every item to the writer separately and readies the writer on the first
// one, so a writer on an idle core wakes for each frame and pays one write
// syscall per delivery (the profile's biggest cost). Here a sender may
// push many items and wake the writer once (the room's committer pushes a
// whole commit batch to every session, then wakes each once), and the
// writer takes everything queued in one step and flushes it with one
// syscall. The bound is the same as the channel's: BroadcastCapacity
// items waiting for the writer, counted per item.

// push appends f to the queue without waking the writer and reports
// whether the writer needs a wake-up for it (the queue was empty). A full
// queue closes the session with 4001 instead: the peer has fallen behind,
// and dropping the item would make it silently miss data. Safe to call
// with a room lock held; it never blocks on the writer.
func (s *session) push(f outFrame) (wake bool) {
	s.qmu.Lock()
	if len(s.q) >= s.srv.cfg.BroadcastCapacity {
		s.qmu.Unlock()
		s.lagged()
		return false
	}
	wake = len(s.q) == 0
	s.q = append(s.q, f)
	s.qmu.Unlock()
	return wake
}

// pushAll is push for several items, under one lock: how the committer
// hands a session its share of a commit batch.
func (s *session) pushAll(items []outFrame) (wake bool) {
	s.qmu.Lock()
	if len(s.q)+len(items) > s.srv.cfg.BroadcastCapacity {
		s.qmu.Unlock()
		s.lagged()
		return false
	}
	wake = len(s.q) == 0
	s.q = append(s.q, items...)
	s.qmu.Unlock()
	return wake
}

// wakeWriter tells the writer that items are queued; any number of calls
// before the writer runs cost it one wake-up.
func (s *session) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lagged closes a session whose queue overflowed (SPEC 4001).
func (s *session) lagged() {
	if !s.isClosing() {
		s.srv.metrics.lagged.Inc()
		s.log.Info("peer lagged past the broadcast capacity; closing for resync", "pubkey", s.pubkey, "capacity", s.srv.cfg.BroadcastCapacity)
	}
	s.abort(closeResync, reasonResync)
}

// take hands the writer everything queued, in order, and gives the queue
// the slice the writer returned last time (recycle), so a busy session
// allocates no queue storage in steady state.
func (s *session) take() []outFrame {
	s.qmu.Lock()
	items := s.q
	s.q, s.qspare = s.qspare, nil
	s.qmu.Unlock()
	return items
}

// recycle returns a slice from take once its items are written. Its
// elements are cleared so that sent frames and catch-ups can be freed.
func (s *session) recycle(items []outFrame) {
	clear(items)
	// A slice grown by a burst is not kept: an idle session should not
	// hold a large backing array.
	if cap(items) > maxRecycledQueue {
		return
	}
	s.qmu.Lock()
	s.qspare = items[:0]
	s.qmu.Unlock()
}

// maxRecycledQueue is the largest queue slice (items) kept for reuse.
const maxRecycledQueue = 1024
