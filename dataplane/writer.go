package dataplane

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// writeTimeout bounds every write; a peer that accepts nothing for
	// this long is dropped (SPEC: a send blocked over 5 s).
	writeTimeout = 5 * time.Second
	// closeGrace is how long the writer waits, after sending a close
	// frame, for the peer's answer before dropping the TCP connection.
	// Closing at once could reset the connection while the peer still
	// has data in flight, and a reset can destroy the close frame
	// before the peer reads it.
	closeGrace = 2 * time.Second
)

// writeLoop is the session's only writer: queued frames, pongs, pings and
// the final close frame all go out from here, each write under its own
// deadline.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	ping := time.NewTicker(s.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-s.closing:
			s.finish()
			return
		case f := <-s.queue:
			// Write everything queued in one go. This is where a
			// buffering conn will later turn the batch into one syscall.
			for {
				if !s.writeItem(f) {
					return
				}
				select {
				case f = <-s.queue:
					continue
				default:
				}
				break
			}
		case data := <-s.pongs:
			if err := s.write(websocket.PongMessage, []byte(data)); err != nil {
				s.writeFailed(err)
				return
			}
		case <-ping.C:
			if err := s.write(websocket.PingMessage, nil); err != nil {
				s.writeFailed(err)
				return
			}
		}
	}
}

// writeItem writes one queue item; false means the session is over (the
// close is done or the socket failed).
func (s *session) writeItem(f outFrame) bool {
	if f.data == nil && f.batch == nil {
		s.abort(f.closeCode, f.closeText)
		s.finish()
		return false
	}
	frames := f.batch
	if f.data != nil {
		frames = [][]byte{f.data}
	}
	for _, b := range frames {
		// An abort (4001, shutdown) takes effect between frames rather
		// than after whatever is still queued.
		if s.isClosing() {
			s.finish()
			return false
		}
		if err := s.write(websocket.TextMessage, b); err != nil {
			s.writeFailed(err)
			return false
		}
	}
	return true
}

// write sends one frame under a fresh deadline.
func (s *session) write(kind int, data []byte) error {
	deadline := time.Now().Add(writeTimeout)
	if kind == websocket.PingMessage || kind == websocket.PongMessage {
		return s.conn.WriteControl(kind, data, deadline)
	}
	_ = s.conn.SetWriteDeadline(deadline) // only records it; applied by the write
	return s.conn.WriteMessage(kind, data)
}

// writeFailed ends a session whose socket no longer takes writes: no close
// frame can get through, so the connection is dropped, which also ends the
// reader.
func (s *session) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Info("peer stopped reading; dropping session", "timeout", writeTimeout)
	} else {
		s.log.Debug("write failed; dropping session", "err", err)
	}
	s.abort(0, "")
	_ = s.conn.Close()
}

// finish sends the close frame chosen by abort, waits for the reader to
// see the peer's answer (or for closeGrace), and drops the connection.
func (s *session) finish() {
	if s.closeCode != 0 {
		msg := websocket.FormatCloseMessage(s.closeCode, s.closeText)
		if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeTimeout)); err != nil {
			s.log.Debug("close frame not sent", "code", s.closeCode, "err", err)
		}
	}
	t := time.NewTimer(closeGrace)
	select {
	case <-s.readerDone:
	case <-t.C:
	}
	t.Stop()
	_ = s.conn.Close()
}
