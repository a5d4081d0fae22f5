package dataplane

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	ps, err := ParseTrustedProxies(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{" 10.1.2.3/8", "192.0.2.7", "fd00::/8", "::ffff:198.51.100.0/120", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "198.51.100.0/24"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0/8", "1.2.3.4:80"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v, want an error quoting it", bad, err)
		}
	}
	if _, err := checkTrustedProxies([]netip.Prefix{{}}); err == nil {
		t.Error("zero prefix accepted in Config")
	}
}

func TestForwardedClient(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "2001:db8::/32")
	peer := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		name   string
		values []string
		want   string
		ok     bool
	}{
		{"none", nil, "10.0.0.1", false},
		{"single", []string{"203.0.113.9"}, "203.0.113.9", true},
		{"client spoofs left of real", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9", true},
		{"inner proxies skipped", []string{"203.0.113.9, 10.9.9.9, 10.8.8.8"}, "203.0.113.9", true},
		{"several header lines", []string{"1.1.1.1", "203.0.113.9, 10.2.2.2"}, "203.0.113.9", true},
		{"all trusted: leftmost", []string{"10.3.3.3, 10.4.4.4"}, "10.3.3.3", true},
		{"port and brackets", []string{"[2001:db9::1]:443"}, "2001:db9::1", true},
		{"v4 with port", []string{"203.0.113.9:5555"}, "203.0.113.9", true},
		{"bracketed v6", []string{"[2001:db9::2]"}, "2001:db9::2", true},
		{"mapped v4", []string{"::ffff:203.0.113.9"}, "203.0.113.9", true},
		{"zone dropped", []string{"fe80::1%eth0"}, "fe80::1", true},
		{"empty entries", []string{" , 203.0.113.9 ,"}, "203.0.113.9", true},
		{"garbage right of client", []string{"203.0.113.9, unknown"}, "10.0.0.1", false},
		{"garbage left of client is never read", []string{"unknown, 203.0.113.9"}, "203.0.113.9", true},
		{"trusted v6 proxy", []string{"203.0.113.9, 2001:db8::5"}, "203.0.113.9", true},
	} {
		got, ok := forwardedClient(peer, tc.values, trusted)
		if got.String() != tc.want || ok != tc.ok {
			t.Errorf("%s: %v = %s, %v; want %s, %v", tc.name, tc.values, got, ok, tc.want, tc.ok)
		}
	}
}

func TestForwardedProto(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
		ok     bool
	}{
		{nil, "", false},
		{[]string{"https"}, "https", true},
		{[]string{"HTTPS"}, "https", true},
		{[]string{"wss"}, "https", true},
		{[]string{"http"}, "http", true},
		{[]string{"https, http"}, "http", true}, // the adjacent proxy's word counts
		{[]string{"http", "https"}, "https", true},
		{[]string{"gopher"}, "", false},
	} {
		if got, ok := forwardedProto(tc.values); got != tc.want || ok != tc.ok {
			t.Errorf("%v = %q, %v; want %q, %v", tc.values, got, ok, tc.want, tc.ok)
		}
	}
}

// TestViaProxy: the headers are believed from a trusted peer only, and the
// scheme is always settled.
func TestViaProxy(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: mustPrefixes(t, "127.0.0.0/8", "::1")}}
	req := func(remote string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/ws/r", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "198.51.100.4, 127.0.0.9")
		r.Header.Set("X-Forwarded-Proto", "https")
		return r
	}
	for _, tc := range []struct{ remote, wantRemote, wantScheme string }{
		{"127.0.0.1:4000", "198.51.100.4", "https"},
		{"[::1]:4000", "198.51.100.4", "https"},
		{"[::ffff:127.0.0.1]:4000", "198.51.100.4", "https"},
		{"192.0.2.1:4000", "192.0.2.1:4000", "http"},
		{"not-an-address", "not-an-address", "http"},
	} {
		in := req(tc.remote)
		out := s.viaProxy(in)
		if out.RemoteAddr != tc.wantRemote || out.URL.Scheme != tc.wantScheme {
			t.Errorf("peer %s: remote %q scheme %q, want %q %q", tc.remote, out.RemoteAddr, out.URL.Scheme, tc.wantRemote, tc.wantScheme)
		}
		if in.RemoteAddr != tc.remote || in.URL.Scheme != "" {
			t.Errorf("peer %s: viaProxy modified the request it was given", tc.remote)
		}
	}
	none := &Server{}
	if out := none.viaProxy(req("127.0.0.1:4000")); out.RemoteAddr != "127.0.0.1:4000" || out.URL.Scheme != "http" {
		t.Errorf("no trusted proxies: remote %q scheme %q", out.RemoteAddr, out.URL.Scheme)
	}
}

// FuzzForwardedHeaders: the header parsers never panic, and the believed
// client is always either the peer or an address written in the header
// that is not itself a trusted proxy unless every hop was.
func FuzzForwardedHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"203.0.113.9", "https"},
		{"1.1.1.1, 10.0.0.2", "http, https"},
		{"[2001:db8::1]:80, unknown", "wss"},
		{",,, ,", ","},
		{"::ffff:10.0.0.1%zone", "HTTPS"},
	} {
		f.Add(s[0], s[1])
	}
	trusted := mustPrefixes(f, "10.0.0.0/8", "2001:db8::/32")
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, xff, xfp string) {
		values := strings.Split(xff, "\n")
		got, ok := forwardedClient(peer, values, trusted)
		if !ok {
			if got != peer {
				t.Fatalf("not ok but returned %s, not the peer", got)
			}
		} else {
			if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
				t.Fatalf("believed client %v is not a plain address", got)
			}
		}
		if p, ok := forwardedProto(strings.Split(xfp, "\n")); ok != (p != "") || (ok && p != "http" && p != "https") {
			t.Fatalf("proto %q, %v", p, ok)
		}
		_, _ = parseForwardedAddr(xff)
		_, _ = ParseTrustedProxies(strings.Split(xff, ","))
	})
}
