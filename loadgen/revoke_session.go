package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// Close code and reason of a revoked session (SPEC §2).
const (
	closeRevoked     = 4003
	closeRevokedText = "token revoked"
)

// revokeSession is one session of a revoke round: a reader goroutine
// drains what the server sends (peer events; an unread session would be
// closed with 4001) and notes when and how the connection ended.
type revokeSession struct {
	conn   *client.Conn
	node   int  // index into the URLs
	target bool // its peer is the one revoked
	acks   chan struct{}
	done   chan struct{} // closed by the reader when the connection ended
	// Set by the reader before done is closed; read after.
	endAt  time.Time
	endErr error
}

func newRevokeSession(conn *client.Conn, node int, target bool) *revokeSession {
	s := &revokeSession{conn: conn, node: node, target: target, acks: make(chan struct{}, 1), done: make(chan struct{})}
	go s.read()
	return s
}

// read runs until the connection ends. The end time is taken as soon as
// Next returns, so a close's latency includes only the client's hand-off
// from its reader goroutine (microseconds), not any bookkeeping.
func (s *revokeSession) read() {
	defer close(s.done)
	for {
		m, err := s.conn.Next(context.Background())
		if err != nil && m.Raw == nil { // the connection ended (a bad frame comes with Raw)
			s.endAt, s.endErr = time.Now(), err
			return
		}
		if m.Type == protocol.TypeSubscribeAck {
			select {
			case s.acks <- struct{}{}:
			default:
			}
		}
	}
}

// ended reports whether the connection has ended.
func (s *revokeSession) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// closeCode answers the close code and text the server sent, after done.
func (s *revokeSession) closeCode() (int, string, bool) { return client.CloseError(s.endErr) }

// revokedClose says whether the session ended with the revocation close;
// otherwise it answers how it ended.
func (s *revokeSession) revokedClose() (bool, string) {
	code, text, ok := s.closeCode()
	switch {
	case ok && code == closeRevoked && text == closeRevokedText:
		return true, ""
	case ok:
		return false, fmt.Sprintf("closed with %d %q", code, text)
	case errors.Is(s.endErr, client.ErrClosed):
		return false, "closed by the tool"
	}
	return false, fmt.Sprintf("ended without a close frame: %v", s.endErr)
}

// roundTrip proves the server still serves the session: it sends a
// subscribe (the same pattern as at hello, so nothing changes) and waits
// for the subscribe-ack. A session the server closed answers how.
func (s *revokeSession) roundTrip(ctx context.Context) error {
	if err := s.conn.Send(ctx, protocol.Subscribe{Patterns: publisherSubscribe}); err != nil {
		if s.ended() {
			_, how := s.revokedClose()
			return errors.New(how)
		}
		return err
	}
	select {
	case <-s.acks:
		return nil
	case <-s.done:
		_, how := s.revokedClose()
		return errors.New(how)
	case <-ctx.Done():
		return fmt.Errorf("no subscribe-ack: %w", ctx.Err())
	}
}

// close ends the session and waits for its reader.
func (s *revokeSession) close() {
	_ = s.conn.Close()
	<-s.done
}
