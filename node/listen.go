package node

import (
	"fmt"
	"log"
	"log/slog"
	"net"
)

func listen(flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return l, nil
}

// advertised is the address other nodes and clients are told to use.
func advertised(configured string, l net.Listener) string {
	if configured != "" {
		return configured
	}
	return l.Addr().String()
}

// dialable turns a bound address into one a local client can dial: an
// unspecified host (0.0.0.0, ::) becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// certHosts lists every listen and advertise host, for the dev node
// certificate (pki adds localhost and the loopback addresses).
func certHosts(c Config) []string {
	var hosts []string
	for _, a := range []string{c.Listen, c.AdminListen, c.RaftListen, c.AdvertiseListen, c.AdvertiseAdminListen, c.AdvertiseRaftListen} {
		host, _, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			continue
		}
		hosts = append(hosts, host)
	}
	return hosts
}

// slogErrorLog routes net/http's internal errors into the structured log.
func slogErrorLog(l *slog.Logger, listener string) *log.Logger {
	return slog.NewLogLogger(l.With("listener", listener).Handler(), slog.LevelWarn)
}
