// Package node composes one NodalMerge process: it resolves the state
// folder and TLS material, opens the Raft store, bootstraps the cluster when
// this node forms it, and starts the admin (gRPC), public (WebSocket) and
// metrics listeners in order, stopping them in the reverse order.
package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
)

// Defaults of SPEC section 1.
const (
	DefaultListen            = "127.0.0.1:7878"
	DefaultAdminListen       = "127.0.0.1:7879"
	DefaultRaftListen        = "127.0.0.1:7880"
	DefaultStateDir          = ".nodalmerge"
	DefaultHandshakeTimeout  = dataplane.DefaultHandshakeTimeout
	DefaultMaxFrameBytes     = dataplane.DefaultMaxFrameBytes
	DefaultBroadcastCapacity = dataplane.DefaultBroadcastCapacity
	DefaultBootstrapTokenTTL = time.Hour
	DefaultPeerRateNodes     = dataplane.DefaultPeerRateNodes
	DefaultPeerRateMiB       = dataplane.DefaultPeerRateBytes >> 20
	DefaultIdleTimeout       = dataplane.DefaultIdleTimeout
	DefaultMaxConnections    = 10000
	// DefaultKeyRotationGrace outlives the longest token a key can sign
	// (room and operator tokens live at most 24 h), so automatic rotation
	// never breaks a valid token.
	DefaultKeyRotationGrace = 24 * time.Hour
)

// Config is everything `nodalmerge serve` can set. The zero value of a field
// means its default.
type Config struct {
	// StoreDir makes everything durable and is then also the state folder.
	// Empty: Raft and rooms in memory, state folder DefaultStateDir.
	StoreDir string

	NodeID string // empty: derived once and kept in the state folder

	Listen      string // public WebSocket listener
	AdminListen string // internal gRPC admin listener (mTLS)
	RaftListen  string // internal Raft listener (mTLS)
	MetricsAddr string // empty: no metrics listener
	// Pprof serves net/http/pprof under /debug/pprof/ on the metrics
	// listener (diagnostics; off by default).
	Pprof bool

	AdvertiseListen      string
	AdvertiseAdminListen string
	AdvertiseRaftListen  string

	// Bootstrap forms a new cluster. A lone node with no state forms one in
	// any case; on a store that already holds a cluster it is ignored.
	Bootstrap bool
	// Join lists admin addresses of members to ask for membership when
	// this node has no state yet; ignored (with a warning) on a store that
	// already belongs to a cluster.
	Join []string

	// TLSCA, TLSCert and TLSKey replace the generated internal material; all
	// three or none.
	TLSCA, TLSCert, TLSKey string
	// WSTLSCert and WSTLSKey make the public listener serve wss:// (TLS 1.2
	// or later) with this certificate and key; both or neither.
	WSTLSCert, WSTLSKey string
	// TLSReloadInterval is how often the internal and public certificate
	// files are checked for renewal (--tls-reload-interval); 0 turns
	// reloading off. The flag layer supplies DefaultTLSReloadInterval.
	TLSReloadInterval time.Duration
	// TrustedProxies lists the CIDRs (or single addresses) of reverse
	// proxies whose X-Forwarded-For/-Proto the public listener believes
	// (--trusted-proxies); from anyone else they are ignored.
	TrustedProxies []string

	HandshakeTimeout  time.Duration
	MaxFrameBytes     int64
	BroadcastCapacity int
	AllowedOrigins    []string
	// PeerRateNodes and PeerRateMiB are the per-peer ingest budgets
	// (--peer-rate-nodes, --peer-rate-bytes in MiB/s); 0 turns one off.
	// Negative values are refused; the flag layer supplies the defaults.
	PeerRateNodes int
	PeerRateMiB   int
	// IdleTimeout is how long a room without sessions stays loaded.
	IdleTimeout time.Duration
	// MaxConnections caps concurrent WebSocket connections (0: no cap).
	MaxConnections int

	// RecoverOperatorToken writes a fresh bootstrap operator token at start
	// (the audited break-glass path for whoever controls the host).
	RecoverOperatorToken bool
	BootstrapTokenTTL    time.Duration

	// KEKFile holds the key-encryption key (--kek-file, 64 hex digits,
	// mode 0600 or stricter); empty: key seeds this node generates are
	// stored in the clear, and sealed keys cannot sign here.
	KEKFile string
	// KeyRotationInterval rotates a purpose's keyring key automatically
	// (on the leader) once its newest signing key is that old; 0: off.
	KeyRotationInterval time.Duration
	// KeyRotationPrepublish is how long an automatically rotated key is
	// published before it signs (0: it signs at once).
	KeyRotationPrepublish time.Duration
	// KeyRotationGrace is how long a key superseded by automatic rotation
	// keeps verifying; 0 means DefaultKeyRotationGrace.
	KeyRotationGrace time.Duration

	Logger *slog.Logger
	// Banner receives the human-readable start banner; nil: none.
	Banner io.Writer
	Now    func() time.Time
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.RaftListen == "" {
		c.RaftListen = DefaultRaftListen
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.BroadcastCapacity == 0 {
		c.BroadcastCapacity = DefaultBroadcastCapacity
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BootstrapTokenTTL == 0 {
		c.BootstrapTokenTTL = DefaultBootstrapTokenTTL
	}
	if c.KeyRotationGrace == 0 {
		c.KeyRotationGrace = DefaultKeyRotationGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// validate names the offending flag in every error, so a node never starts
// half-configured.
func (c *Config) validate() error {
	var errs []error
	for _, a := range []struct{ flag, v string }{
		{"--listen", c.Listen},
		{"--admin-listen", c.AdminListen},
		{"--raft-listen", c.RaftListen},
		{"--metrics-addr", c.MetricsAddr},
		{"--advertise-listen", c.AdvertiseListen},
		{"--advertise-admin-listen", c.AdvertiseAdminListen},
		{"--advertise-raft-listen", c.AdvertiseRaftListen},
	} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port: %w", a.flag, a.v, err))
		}
	}
	for _, a := range c.Join {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("--join %q: want the host:port of a member's admin listener: %w", a, err))
		}
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, errors.New("--bootstrap and --join exclude each other: form a new cluster or join one"))
	}
	if c.Pprof && c.MetricsAddr == "" {
		errs = append(errs, errors.New("--pprof needs --metrics-addr: profiles are served on the metrics listener only"))
	}
	tlsSet := 0
	for _, s := range []string{c.TLSCA, c.TLSCert, c.TLSKey} {
		if s != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		errs = append(errs, errors.New("--tls-ca, --tls-cert and --tls-key go together: set all three or none"))
	}
	errs = append(errs, c.validateTransport()...)
	if c.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("--handshake-timeout %s: must be positive", c.HandshakeTimeout))
	}
	if c.MaxFrameBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-frame-bytes %d: must be at least 1024", c.MaxFrameBytes))
	}
	if c.BroadcastCapacity < 1 {
		errs = append(errs, fmt.Errorf("--broadcast-capacity %d: must be at least 1", c.BroadcastCapacity))
	}
	if c.PeerRateNodes < 0 {
		errs = append(errs, fmt.Errorf("--peer-rate-nodes %d: must be 0 (off) or more", c.PeerRateNodes))
	}
	if c.PeerRateMiB < 0 {
		errs = append(errs, fmt.Errorf("--peer-rate-bytes %d: must be 0 (off) or more MiB/s", c.PeerRateMiB))
	}
	if c.IdleTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--idle-timeout %s: must be at least 1s", c.IdleTimeout))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("--max-connections %d: must be 0 (no cap) or more", c.MaxConnections))
	}
	if c.BootstrapTokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--bootstrap-token-ttl %s: must be at least 1m", c.BootstrapTokenTTL))
	}
	errs = append(errs, c.validateKeyRotation()...)
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		errs = append(errs, fmt.Errorf("--node-id %q: use 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'", c.NodeID))
	}
	return errors.Join(errs...)
}

func validNodeID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
