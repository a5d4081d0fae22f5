package pki

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// maxNameLen bounds node ids and operator names. They end up in file names,
// URIs, log lines and metric labels, so they are kept short and plain.
const maxNameLen = 128

// validateName accepts node ids and operator names made of ASCII letters,
// digits, '.', '_' and '-', not starting with '.' or '-'. The restriction
// keeps names safe as file names (CreateClient writes <name>.pem) and as
// URI path segments without escaping.
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("name %q must not start with '.' or '-'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("name %q has a character outside [A-Za-z0-9._-]", name)
		}
	}
	return nil
}

// validateClientName additionally refuses operator names whose files would
// collide with the CA or node files in the same directory: "ca" would
// overwrite ca.pem, "ca-key" or any "*-key" would shadow another name's key.
func validateClientName(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	switch {
	case name == "ca", name == "node", strings.HasSuffix(name, "-key"):
		return fmt.Errorf("name %q is reserved (its files would collide with CA, node or key files)", name)
	}
	return nil
}

// defaultHosts are always covered by a node certificate so that local tools
// and single-machine clusters work without naming them.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// hostSet is the normalized set of names a node certificate must cover.
type hostSet struct {
	dns []string
	ips []net.IP
}

// normalizeHosts turns the given hosts (plus the defaults) into DNS and IP
// SANs, deduplicated and in a stable order. It accepts "host:port" and
// "[v6]" forms because callers pass listen and advertise addresses; empty
// and unspecified hosts (":7878", "0.0.0.0") are dropped since no client can
// address a node by them.
func normalizeHosts(hosts []string) (hostSet, error) {
	var hs hostSet
	seenDNS := map[string]bool{}
	seenIP := map[netip.Addr]bool{}
	for _, h := range append(append([]string(nil), defaultHosts...), hosts...) {
		h = strings.TrimSpace(h)
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.Zone() != "" {
				return hostSet{}, fmt.Errorf("host %q: zoned IPv6 addresses cannot be certified", h)
			}
			ip = ip.Unmap()
			if ip.IsUnspecified() || seenIP[ip] {
				continue
			}
			seenIP[ip] = true
			hs.ips = append(hs.ips, net.IP(ip.AsSlice()))
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if err := validateDNSName(h); err != nil {
			return hostSet{}, err
		}
		if !seenDNS[h] {
			seenDNS[h] = true
			hs.dns = append(hs.dns, h)
		}
	}
	return hs, nil
}

// validateDNSName rejects host names that would make an invalid SAN, so a
// typo in --advertise fails at issue time with the host named.
func validateDNSName(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("host %q is longer than 253 bytes", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q has an empty or over-long label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("host %q is neither an IP address nor a valid DNS name", h)
			}
		}
	}
	return nil
}
