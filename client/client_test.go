package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// serve starts a real data plane on 127.0.0.1 and returns a room URL maker.
func serve(t *testing.T, cfg dataplane.Config) (*dataplane.Server, func(room string) string) {
	t.Helper()
	cfg.ServerKey = newKey(t)
	srv, err := dataplane.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(c); err != nil {
			t.Error(err)
		}
		hs.Close()
	})
	return srv, func(room string) string { return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/" + room }
}

func TestDialSendNextClose(t *testing.T) {
	_, url := serve(t, dataplane.Config{})
	key := newKey(t)
	a, err := client.Dial(ctx(t), url("r"), client.Options{Key: key, PeerID: "a", Caps: map[string]bool{"supports_ibf": true}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := a.Welcome()
	if len(w.ServerPubkey) != 64 || w.Caps["supports_ibf"] || len(w.Caps) != 1 {
		t.Fatalf("welcome = %+v", w)
	}

	// A Next that times out leaves the connection usable.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = a.Next(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle Next = %v", err)
	}

	b, err := client.Dial(ctx(t), url("r"), client.Options{Key: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Next(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AsPack(); err == nil {
		t.Fatal("AsPack accepted a peer-joined")
	}
	if _, err := m.AsPeerJoined(); err != nil {
		t.Fatal(err)
	}

	tx := &syncv1.Transaction{Lamport: 1, WallMs: uint64(time.Now().UnixMilli())}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendPack(ctx(t), []*syncv1.Node{n}); err != nil {
		t.Fatal(err)
	}
	if m, err = a.Next(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if ack, err := m.AsPackAck(); err != nil || ack.Accepted != 1 {
		t.Fatalf("ack %+v %v", ack, err)
	}
	if m, err = b.Next(ctx(t)); err != nil {
		t.Fatal(err)
	}
	p, err := m.AsPack()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.PackNodes(p)
	if err != nil || len(nodes) != 1 || history.NodeID(nodes[0]) != id || p.From != hex.EncodeToString(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("relay %+v %v", p, err)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Next(ctx(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	if err := b.Send(ctx(t), protocol.Subscribe{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	if m, err = a.Next(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AsPeerLeft(); err != nil {
		t.Fatal(err)
	}
}

func TestServerCloseIsReported(t *testing.T) {
	srv, url := serve(t, dataplane.Config{})
	c, err := client.Dial(ctx(t), url("r"), client.Options{Key: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := srv.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Next(ctx(t))
	code, text, ok := client.CloseError(err)
	if !ok || code != 1001 || text != "going away" {
		t.Fatalf("Next after shutdown = %v", err)
	}
	if _, _, ok := client.CloseError(errors.New("other")); ok {
		t.Fatal("CloseError matched a plain error")
	}
}

func TestDialRefused(t *testing.T) {
	_, url := serve(t, dataplane.Config{Admission: func(string, *protocol.Hello) (*dataplane.Grant, error) {
		return nil, errors.New("auth: token has expired")
	}})
	_, err := client.Dial(ctx(t), url("r"), client.Options{Key: newKey(t)})
	var he *client.HelloError
	if !errors.As(err, &he) || he.Msg != "auth: token has expired" {
		t.Fatalf("err = %v", err)
	}
	if code, text, ok := client.CloseError(err); !ok || code != 1008 || text != "auth: token has expired" {
		t.Fatalf("close = %d %q %v", code, text, ok)
	}
	if _, err := client.Dial(ctx(t), "ws://127.0.0.1:1/ws/r", client.Options{Key: newKey(t)}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}
