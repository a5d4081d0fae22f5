package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Close codes and texts of SPEC section 2 that the suite expects.
const (
	closePolicy       = 1008
	closeTokenExpired = 4002
	closeTokenRevoked = 4003
	closeRateLimit    = 4008
)

// wsSession is a joined WebSocket session whose messages are read all the
// time by a pump goroutine, so that the moment the server closes it is
// recorded when it happens, not when the test gets round to reading.
type wsSession struct {
	conn *client.Conn
	node int
	name string

	mu     sync.Mutex
	queue  []client.Message
	wake   chan struct{} // one pending wake-up
	done   chan struct{} // closed when the connection has ended
	endErr error
	endAt  time.Time
}

// joinWS dials room on node i as key with tok as hello.token (nil: none).
// The session is closed when the test ends. Refusals come back as the
// client's *HelloError.
func (sc *secCluster) joinWS(ctx context.Context, i int, room, name string, key ed25519.PrivateKey, tok json.RawMessage, frontier ...history.ID) (*wsSession, error) {
	opts := client.Options{Key: key, PeerID: name, PeerType: "e2e", Token: tok, TLS: sc.clientTLS(), Frontier: frontier}
	conn, err := client.Dial(ctx, sc.wsURL(i, room), opts)
	if err != nil {
		return nil, err
	}
	s := &wsSession{conn: conn, node: i, name: name, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.pump()
	sc.t.Cleanup(s.close)
	return s, nil
}

// mustJoin is joinWS for joins that must be admitted.
func (sc *secCluster) mustJoin(ctx context.Context, i int, room, name string, key ed25519.PrivateKey, tok json.RawMessage, frontier ...history.ID) *wsSession {
	sc.t.Helper()
	s, err := sc.joinWS(ctx, i, room, name, key, tok, frontier...)
	if err != nil {
		sc.t.Fatalf("%s joining %s on %s: %v", name, room, sc.nodes[i].id, err)
	}
	return s
}

// expectRefused checks that a join failed at hello with exactly
// "auth: <reason>" followed by a close with 1008.
func (sc *secCluster) expectRefused(ctx context.Context, i int, room, what string, key ed25519.PrivateKey, tok json.RawMessage, reason string) string {
	sc.t.Helper()
	s, err := sc.joinWS(ctx, i, room, what, key, tok)
	if err == nil {
		s.close()
		sc.t.Errorf("%s on %s: admitted, want refusal %q", what, sc.nodes[i].id, "auth: "+reason)
		return ""
	}
	var he *client.HelloError
	if !errors.As(err, &he) {
		sc.t.Errorf("%s on %s: %v, want the error envelope %q", what, sc.nodes[i].id, err, "auth: "+reason)
		return err.Error()
	}
	if he.Msg != "auth: "+reason {
		sc.t.Errorf("%s on %s: refused with %q, want %q", what, sc.nodes[i].id, he.Msg, "auth: "+reason)
	}
	if code, _, ok := client.CloseError(he.Err); !ok || code != closePolicy {
		sc.t.Errorf("%s on %s: after the error the connection ended with %v, want close %d", what, sc.nodes[i].id, he.Err, closePolicy)
	}
	return he.Msg
}

func (s *wsSession) pump() {
	defer close(s.done)
	for {
		m, err := s.conn.Next(context.Background())
		if err != nil {
			s.mu.Lock()
			s.endErr, s.endAt = err, time.Now()
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.queue = append(s.queue, m)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// close ends the session from the client side and waits for the pump.
func (s *wsSession) close() {
	_ = s.conn.Close()
	<-s.done
}

// next pops the oldest unread message, waiting for one.
func (s *wsSession) next(ctx context.Context) (client.Message, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return m, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
			s.mu.Lock()
			empty := len(s.queue) == 0
			s.mu.Unlock()
			if empty {
				return client.Message{}, fmt.Errorf("session %s ended: %w", s.name, s.endErr)
			}
		case <-ctx.Done():
			return client.Message{}, fmt.Errorf("session %s: waiting for a message: %w", s.name, ctx.Err())
		}
	}
}

// await reads until a message of type typ arrives (others are skipped).
func (s *wsSession) await(ctx context.Context, t *testing.T, typ string) client.Message {
	t.Helper()
	for {
		m, err := s.next(ctx)
		if err != nil {
			t.Fatalf("%s waiting for %s: %v", s.name, typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// reply sends a control command frame carrying id and returns the frame
// the server answered with that id (its result or an error).
func (s *wsSession) reply(ctx context.Context, frame map[string]any, id string) (client.Message, error) {
	frame["id"] = id
	if err := s.conn.Send(ctx, frame); err != nil {
		return client.Message{}, err
	}
	for {
		m, err := s.next(ctx)
		if err != nil {
			return client.Message{}, err
		}
		var echo struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Raw, &echo) == nil && echo.ID == id {
			return m, nil
		}
	}
}

// closed waits for the session to end and answers the server's close code
// and text and when the client saw it.
func (s *wsSession) closed(ctx context.Context) (code int, text string, at time.Time, err error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return 0, "", time.Time{}, fmt.Errorf("session %s still open: %w", s.name, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code, text, ok := client.CloseError(s.endErr)
	if !ok {
		return 0, "", s.endAt, fmt.Errorf("session %s ended without a close frame: %w", s.name, s.endErr)
	}
	return code, text, s.endAt, nil
}

// open reports whether the session is still connected.
func (s *wsSession) open() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// alive proves the session is open and served: a subscribe answered by a
// subscribe-ack.
func (s *wsSession) alive(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := s.conn.Send(ctx, map[string]any{"type": "subscribe", "patterns": []string{"**"}}); err != nil {
		t.Fatalf("%s: send subscribe: %v", s.name, err)
	}
	s.await(ctx, t, "subscribe-ack")
}

// write signs one node setting path with author and sends it; it answers
// the node's id and the pack-ack.
func (s *wsSession) write(ctx context.Context, t *testing.T, a *client.Author, path string) (history.ID, packAck) {
	t.Helper()
	n, id, err := a.Write(client.Set(path, []byte(`{"v":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.conn.SendPack(ctx, []*syncv1.Node{n}); err != nil {
		t.Fatalf("%s: send pack: %v", s.name, err)
	}
	var ack packAck
	decode(t, s.await(ctx, t, "pack-ack").Raw, &ack)
	return id, ack
}

// packAck is the pack-ack frame with the ext rejections.
type packAck struct {
	Accepted, Rejected, Incoming int
	Rejections                   []struct{ ID, Reason string }
}

// packIDs decodes a pack message into its node ids, sorted.
func packIDs(t *testing.T, m client.Message) []history.ID {
	t.Helper()
	p, err := m.AsPack()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.PackNodes(p)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]history.ID, len(nodes))
	for i, n := range nodes {
		ids[i] = history.NodeID(n)
	}
	history.SortIDs(ids)
	return ids
}

func sortedIDs(ids ...history.ID) []history.ID {
	out := slices.Clone(ids)
	history.SortIDs(out)
	return out
}

// signToken signs a room token offline with a room's own key and answers
// it in its hello.token form.
func signToken(t *testing.T, roomKey ed25519.PrivateKey, room string, peer ed25519.PublicKey, expiry time.Time, caps []string, kid string) (json.RawMessage, token.RoomToken) {
	t.Helper()
	tok := token.SignRoom(roomKey, room, peer, uint64(expiry.Unix()), caps, kid)
	raw, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw, tok
}
