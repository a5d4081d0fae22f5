package dataplane_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
)

// remoteOf returns the Remote of the one joined session of room.
func remoteOf(t *testing.T, h *harness, room string) string {
	t.Helper()
	var remotes []string
	h.srv.CloseSessions(func(i dataplane.SessionInfo) bool {
		if i.Room == room {
			remotes = append(remotes, i.Remote)
		}
		return false
	}, 0, "")
	if len(remotes) != 1 {
		t.Fatalf("room %s has %d sessions, want 1", room, len(remotes))
	}
	return remotes[0]
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTrustedProxyForwardedFor: over a real socket from 127.0.0.1, the
// client address of X-Forwarded-For becomes SessionInfo.Remote and the
// logged address when 127.0.0.1 is a trusted proxy, and is ignored when
// it is not.
func TestTrustedProxyForwardedFor(t *testing.T) {
	hdr := http.Header{"X-Forwarded-For": {"198.51.100.23, 127.0.0.1"}}

	logs := &syncBuffer{}
	trusting := newHarness(t, dataplane.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	c := trusting.dial(t, "behind-proxy", client.Options{Header: hdr})
	if got := remoteOf(t, trusting, "behind-proxy"); got != "198.51.100.23" {
		t.Errorf("trusted peer: Remote = %q, want the forwarded client 198.51.100.23", got)
	}
	_ = c.Close()
	waitFor(t, "session closed log", func() bool { return strings.Contains(logs.String(), "session closed") })
	if !strings.Contains(logs.String(), "remote=198.51.100.23") {
		t.Errorf("logs do not name the forwarded client:\n%s", logs.String())
	}

	other := newHarness(t, dataplane.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	other.dial(t, "direct", client.Options{Header: hdr})
	if got := remoteOf(t, other, "direct"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("untrusted peer: Remote = %q, want the TCP peer 127.0.0.1:port", got)
	}
}

// TestTrustedProxyForwardedProto: an https page behind a TLS-terminating
// proxy reaches the server over plain HTTP; its same-origin connection is
// allowed when a trusted proxy says the client used https, and refused
// when the claim comes from an untrusted peer or is absent.
func TestTrustedProxyForwardedProto(t *testing.T) {
	proxied := newHarness(t, dataplane.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	direct := newHarness(t, dataplane.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	httpsPage := func(h *harness) string { return "https://" + strings.TrimPrefix(h.hs.URL, "http://") }

	proxied.dial(t, "r", client.Options{Header: http.Header{
		"Origin": {httpsPage(proxied)}, "X-Forwarded-Proto": {"https"},
	}})
	for name, tc := range map[string]struct {
		h   *harness
		hdr http.Header
	}{
		"no X-Forwarded-Proto":   {proxied, http.Header{"Origin": {httpsPage(proxied)}}},
		"untrusted peer":         {direct, http.Header{"Origin": {httpsPage(direct)}, "X-Forwarded-Proto": {"https"}}},
		"proxy says http":        {proxied, http.Header{"Origin": {httpsPage(proxied)}, "X-Forwarded-Proto": {"http"}}},
		"http page, proxy https": {proxied, http.Header{"Origin": {proxied.hs.URL}, "X-Forwarded-Proto": {"https"}}},
	} {
		_, err := client.Dial(stepCtx(t), tc.h.url("r"), client.Options{Key: newKey(t), Header: tc.hdr})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
}
