package dataplane

import (
	"crypto/ed25519"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newQueueSession(t *testing.T, capacity int) *session {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{ServerKey: key, BroadcastCapacity: capacity, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(srv, 1, nil, nil, "r", "127.0.0.1:1", slog.New(slog.DiscardHandler))
	t.Cleanup(s.cancel)
	return s
}

func TestQueueWakesOncePerNonEmpty(t *testing.T) {
	s := newQueueSession(t, 8)
	if !s.push(outFrame{data: []byte("1")}) {
		t.Fatal("first item into an empty queue asked for no wake-up")
	}
	if s.push(outFrame{data: []byte("2")}) || s.pushAll([]outFrame{{data: []byte("3")}, {data: []byte("4")}}) {
		t.Fatal("items behind a pending one asked for another wake-up")
	}
	s.wakeWriter()
	s.wakeWriter() // coalesces with the first
	if len(s.wake) != 1 {
		t.Fatalf("%d wake-ups pending, want 1", len(s.wake))
	}
	items := s.take()
	if len(items) != 4 {
		t.Fatalf("took %d items, want 4", len(items))
	}
	for i, f := range items {
		if want := string(rune('1' + i)); string(f.data) != want {
			t.Fatalf("item %d = %q, want %q", i, f.data, want)
		}
	}
	s.recycle(items)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("queue not empty after take: %d", len(got))
	}
	if !s.pushAll([]outFrame{{data: []byte("5")}}) {
		t.Fatal("empty queue again: no wake-up asked")
	}
	if got := s.take(); len(got) != 1 || string(got[0].data) != "5" || cap(got) < 4 {
		t.Fatalf("after recycle: %d items, cap %d", len(got), cap(got))
	}
	if s.isClosing() {
		t.Fatal("a queue within capacity closed the session")
	}
}

func TestQueueOverflowClosesWithResync(t *testing.T) {
	for _, tc := range []struct {
		name string
		fill func(s *session)
	}{
		{"push", func(s *session) {
			for range 4 {
				s.push(outFrame{data: []byte("x")})
			}
		}},
		// A batch that does not fit is not queued in part.
		{"pushAll", func(s *session) {
			s.push(outFrame{data: []byte("x")})
			s.pushAll(make([]outFrame, 3))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newQueueSession(t, 3)
			tc.fill(s)
			if !s.isClosing() || s.closeCode != closeResync || s.closeText != reasonResync {
				t.Fatalf("closing %v, code %d %q; want 4001 %q", s.isClosing(), s.closeCode, s.closeText, reasonResync)
			}
			var m dto.Metric
			if err := s.srv.metrics.lagged.Write(&m); err != nil {
				t.Fatal(err)
			}
			if v := m.GetCounter().GetValue(); v != 1 {
				t.Fatalf("lagged counter = %v, want 1", v)
			}
		})
	}
}
