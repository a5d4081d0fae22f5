package dataplane

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Reverse proxies (--trusted-proxies).
//
// Behind a TLS-terminating proxy the TCP peer is the proxy and the
// connection is plain HTTP; the client's address and scheme arrive in
// X-Forwarded-For and X-Forwarded-Proto. Anyone can send those headers, so
// they are believed only when the TCP peer is inside a configured prefix;
// from anyone else they are ignored (not an error: a client behind its own
// corporate proxy may send them innocently).

// ParseTrustedProxies parses --trusted-proxies entries: CIDRs
// ("10.0.0.0/8", "fd00::/8") or single addresses ("10.1.2.3", meaning /32
// or /128). Prefixes are masked ("10.1.2.3/8" becomes "10.0.0.0/8") and
// IPv4-mapped IPv6 forms are reduced to IPv4, as peers are compared.
func ParseTrustedProxies(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(e, "/") {
			var err error
			if p, err = netip.ParsePrefix(e); err != nil {
				return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address: %w", e, err)
			}
		} else {
			a, err := netip.ParseAddr(e)
			if err != nil {
				return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address: %w", e, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, normalizePrefix(p))
	}
	return out, nil
}

// normalizePrefix masks p and turns ::ffff:a.b.c.d/n (n >= 96) into the
// IPv4 prefix it denotes, because peers are unmapped before comparison.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// checkTrustedProxies validates Config.TrustedProxies and normalizes it.
func checkTrustedProxies(ps []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			return nil, errors.New("dataplane: TrustedProxies holds an invalid prefix")
		}
		out = append(out, normalizePrefix(p))
	}
	return out, nil
}

// viaProxy returns r as the client made it: when the TCP peer is a trusted
// proxy, RemoteAddr becomes the client address of X-Forwarded-For (an
// address without port: the port the proxy saw is not forwarded) and
// URL.Scheme the scheme of X-Forwarded-Proto. URL.Scheme is always set
// ("https" on a TLS connection, else "http") so that the origin check has
// one place to look. r itself is not modified.
func (s *Server) viaProxy(r *http.Request) *http.Request {
	scheme := connScheme(r)
	remote := r.RemoteAddr
	if peer, ok := s.trustedPeer(r.RemoteAddr); ok {
		if client, ok := forwardedClient(peer, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies); ok {
			remote = client.String()
		}
		if p, ok := forwardedProto(r.Header.Values("X-Forwarded-Proto")); ok {
			scheme = p
		}
	}
	r2 := r.WithContext(r.Context()) // shallow copy
	u := *r.URL
	u.Scheme = scheme
	r2.URL, r2.RemoteAddr = &u, remote
	return r2
}

// trustedPeer parses the TCP peer and reports whether it is a trusted
// proxy.
func (s *Server) trustedPeer(remoteAddr string) (netip.Addr, bool) {
	if len(s.cfg.TrustedProxies) == 0 {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := ap.Addr().Unmap().WithZone("")
	return peer, trusted(peer, s.cfg.TrustedProxies)
}

func trusted(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// connScheme is the scheme of the connection itself.
func connScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// requestScheme is the scheme the client used: the one viaProxy settled
// on, else the connection's own.
func requestScheme(r *http.Request) string {
	if r.URL != nil && r.URL.Scheme != "" {
		return r.URL.Scheme
	}
	return connScheme(r)
}

// forwardedClient finds the client address in X-Forwarded-For values (all
// header lines, in order, each a comma-separated list to which every proxy
// appends the address it received from). It walks from the right, where
// the trusted peer appended, skipping trusted proxies, and returns the
// first address that is not one: everything left of it was written by a
// party we do not trust. If every hop is trusted, the leftmost is the
// client. An entry that is not an address (garbage, "unknown") ends the
// walk with peer and ok false: the caller keeps the TCP peer rather than
// guess. Without any entry it also returns peer, false.
// Entries may carry a port ("1.2.3.4:5", "[::1]:5"), which is dropped.
func forwardedClient(peer netip.Addr, values []string, prefixes []netip.Prefix) (netip.Addr, bool) {
	var last netip.Addr
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var entry string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				entry, list = list, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue // "a,,b" and trailing commas: proxies differ, skip
			}
			a, ok := parseForwardedAddr(entry)
			if !ok {
				return peer, false
			}
			if !trusted(a, prefixes) {
				return a, true
			}
			last = a
		}
	}
	if last.IsValid() {
		return last, true
	}
	return peer, false
}

// parseForwardedAddr parses one X-Forwarded-For entry: an address, with
// or without port, IPv6 optionally bracketed. Zones are dropped and
// IPv4-mapped IPv6 is reduced to IPv4.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// forwardedProto reads X-Forwarded-Proto. The rightmost value is the one
// the trusted peer wrote (a proxy that appends rather than replaces puts
// its own last); anything but http/https (ws/wss accepted as their
// equivalents) is ignored.
func forwardedProto(values []string) (string, bool) {
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		if j := strings.LastIndexByte(v, ','); j >= 0 {
			v = v[j+1:]
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "https", "wss":
			return "https", true
		case "http", "ws":
			return "http", true
		case "":
			continue
		default:
			return "", false
		}
	}
	return "", false
}
