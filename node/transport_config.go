package node

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
)

// validateTransport checks the public listener's TLS and proxy settings and
// that no two listeners share an address. Every error names its flags.
func (c *Config) validateTransport() []error {
	var errs []error
	switch {
	case c.WSTLSCert != "" && c.WSTLSKey == "":
		errs = append(errs, fmt.Errorf("--ws-tls-cert %s needs --ws-tls-key: set both or neither", c.WSTLSCert))
	case c.WSTLSKey != "" && c.WSTLSCert == "":
		errs = append(errs, fmt.Errorf("--ws-tls-key %s needs --ws-tls-cert: set both or neither", c.WSTLSKey))
	}
	if c.TLSReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("--tls-reload-interval %s: must be 0 (off) or more", c.TLSReloadInterval))
	}
	if _, err := dataplane.ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	return append(errs, c.separateListeners()...)
}

// separateListeners refuses configurations that would put the metrics or
// admin endpoints on the public listener's address, or any two listeners
// on one address (SPEC section 1: metrics and admin are never public).
// Binding would fail for most of these anyway; refusing by configuration
// fails before anything is bound, with a message that says why.
func (c *Config) separateListeners() []error {
	ls := []struct{ flag, addr string }{
		{"--listen", c.Listen},
		{"--admin-listen", c.AdminListen},
		{"--raft-listen", c.RaftListen},
		{"--metrics-addr", c.MetricsAddr},
	}
	var errs []error
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			if sameListenAddr(ls[i].addr, ls[j].addr) {
				errs = append(errs, fmt.Errorf("%s %s and %s %s are the same address: the public, admin, raft and metrics listeners must be separate (metrics and admin are never served on the public listener)",
					ls[j].flag, ls[j].addr, ls[i].flag, ls[i].addr))
			}
		}
	}
	return errs
}

// sameListenAddr reports whether two listen addresses name one socket: the
// same fixed port on the same host, or on hosts of which one is a wildcard
// ("", 0.0.0.0, ::), which covers every address. Port 0 (kernel-chosen)
// never collides.
func sameListenAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if a == "" || b == "" || err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	if wildcardHost(ha) || wildcardHost(hb) {
		return true
	}
	if ia, ib := net.ParseIP(ha), net.ParseIP(hb); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(ha, hb)
}

func wildcardHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || (ip != nil && ip.IsUnspecified())
}

// trustedProxies is TrustedProxies parsed; validate has refused bad ones.
func (c *Config) trustedProxies() []netip.Prefix {
	ps, _ := dataplane.ParseTrustedProxies(c.TrustedProxies)
	return ps
}
