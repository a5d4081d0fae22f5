package dataplane

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// closeGrace is how long the writer waits, after sending a close frame, for
// the peer's answer before dropping the TCP connection, and how long the
// best-effort close of an overloaded peer may take. Closing at once could
// reset the connection while the peer still has data in flight, and a
// reset can destroy the close frame before the peer reads it.
const closeGrace = 2 * time.Second

// writeLoop is the session's only writer: queued frames, pongs, pings and
// the final close frame all go out from here. Everything queued is drained
// into the buffered connection and flushed once, so a busy session costs
// one syscall per batch, not per frame.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	ping := time.NewTicker(s.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.closing:
			s.finish()
			return
		case <-s.wake:
			// Whatever was queued while these items were written goes
			// into the same flush.
			for items := s.take(); len(items) > 0; items = s.take() {
				for _, f := range items {
					if !s.writeItem(f) {
						return
					}
				}
				s.recycle(items)
			}
		case data := <-s.pongs:
			if err := s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.srv.cfg.SendTimeout)); err != nil {
				s.writeFailed(err)
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.srv.cfg.SendTimeout)); err != nil {
				s.writeFailed(err)
				return
			}
		}
		if !s.flush() {
			return
		}
	}
}

// writeItem buffers one queue item, flushing early when the buffer grows
// large; false means the session is over.
func (s *session) writeItem(f outFrame) bool {
	if f.data == nil && f.catchUp == nil {
		s.abort(f.closeCode, f.closeText)
		s.finish()
		return false
	}
	if f.data != nil && !s.buffer(f.data) {
		return false
	}
	if f.catchUp != nil {
		return s.writeCatchUp(f.catchUp)
	}
	return true
}

// buffer appends one text frame; false means the session is over.
func (s *session) buffer(frame []byte) bool {
	// An abort (4001, shutdown, 4008) takes effect between frames rather
	// than after whatever is still queued.
	if s.isClosing() {
		s.finish()
		return false
	}
	if s.bc.appendText(frame) >= flushThreshold {
		return s.flush()
	}
	return true
}

// writeCatchUp encodes a catch-up into bounded pack frames, filtered by the
// subscription it was queued with.
func (s *session) writeCatchUp(c *catchUp) bool {
	nodes := c.sub.filterNodes(c.nodes)
	ok := true
	err := chunks(nodes, func(run []*syncv1.Node) error {
		b, err := s.srv.encodePack(c.from, c.root, run)
		if err != nil {
			return err
		}
		if !s.buffer(b) {
			ok = false
			return errSessionOver
		}
		return nil
	})
	if err != nil && ok {
		s.log.Error("encode catch-up", "err", err)
		// The history could not be sent: the peer must not believe it is
		// in sync, so make it reconnect.
		if b, e := encode(protocol.Error{Msg: "internal error: catch-up failed"}); e == nil {
			s.bc.appendText(b)
		}
		s.abort(closeResync, reasonResync)
		s.finish()
		return false
	}
	return ok
}

// errSessionOver stops a catch-up whose session ended mid-way.
var errSessionOver = errors.New("dataplane: session over")

// flush writes what is buffered; false means the session is over. A flush
// that cannot complete within SendTimeout means the peer stopped reading:
// SPEC 1011 "server overload".
func (s *session) flush() bool {
	err := s.bc.flush(s.srv.cfg.SendTimeout)
	if err == nil {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.srv.metrics.sendTimeout.Inc()
		s.log.Info("send blocked past the send timeout; closing with 1011", "pubkey", s.pubkey, "timeout", s.srv.cfg.SendTimeout)
		s.abort(closeOverload, reasonOverload)
		s.finish()
		return false
	}
	s.writeFailed(err)
	return false
}

// writeFailed ends a session whose socket no longer takes writes: no close
// frame can get through, so the connection is dropped, which also ends the
// reader.
func (s *session) writeFailed(err error) {
	s.log.Debug("write failed; dropping session", "err", err)
	s.abort(0, "")
	_ = s.conn.Close()
}

// finish sends the close frame chosen by abort (after whatever is still
// buffered, so a frame cut by a timed-out flush is completed first), waits
// for the reader to see the peer's answer (or for closeGrace), and drops
// the connection. For a peer that stopped reading this is best effort:
// the whole attempt is bounded by closeGrace.
func (s *session) finish() {
	if s.closeCode != 0 {
		msg := websocket.FormatCloseMessage(s.closeCode, s.closeText)
		if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace)); err != nil {
			s.log.Debug("close frame not queued", "code", s.closeCode, "err", err)
		}
	}
	if err := s.bc.flush(closeGrace); err != nil {
		s.log.Debug("close frame not sent", "code", s.closeCode, "err", err)
		_ = s.conn.Close()
	}
	t := time.NewTimer(closeGrace)
	select {
	case <-s.readerDone:
	case <-t.C:
	}
	t.Stop()
	_ = s.conn.Close()
}
