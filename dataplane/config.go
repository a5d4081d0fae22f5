package dataplane

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// Defaults (SPEC section 1 names the flags that set them).
const (
	DefaultHandshakeTimeout  = 15 * time.Second
	DefaultMaxFrameBytes     = 1 << 20
	DefaultBroadcastCapacity = 512
	DefaultPingInterval      = 30 * time.Second
	DefaultIdleTimeout       = 300 * time.Second
	DefaultSendTimeout       = 5 * time.Second
	// DefaultPeerRateNodes and DefaultPeerRateBytes are the defaults of
	// --peer-rate-nodes and --peer-rate-bytes (4 MiB). Config leaves the
	// limits off when zero, as the flags do, so the flag layer applies
	// these.
	DefaultPeerRateNodes = 200
	DefaultPeerRateBytes = 4 << 20
)

// Config configures a Server. Zero values take the defaults unless a field
// says otherwise.
type Config struct {
	// ServerKey is the node's own keypair: its public half is
	// welcome.server_pubkey and the `from` of catch-up packs and of
	// Publish relays.
	ServerKey ed25519.PrivateKey
	// HandshakeTimeout bounds the wait for hello (--handshake-timeout).
	HandshakeTimeout time.Duration
	// MaxFrameBytes is the largest frame accepted from a client; a larger
	// one closes the session with 1009 "message too big".
	MaxFrameBytes int64
	// BroadcastCapacity is how many outgoing items (relays, acks, peer
	// events) may wait for one session's writer (--broadcast-capacity). A
	// session whose queue is full has fallen that far behind the room and
	// is closed with 4001 "resync required"; it reconnects with its
	// frontier and catches up. A welcome with its catch-up takes one item
	// however long the history.
	BroadcastCapacity int
	// PeerRateNodes is the nodes per second one peer (public key) may send
	// into a room, summed over its sessions there; 0 turns the limit off
	// (--peer-rate-nodes, default DefaultPeerRateNodes at the flag).
	PeerRateNodes int
	// PeerRateBytes is the decoded pack bytes per second one peer may send
	// into a room; presence and WebRTC frames count too. 0 turns the limit
	// off (--peer-rate-bytes, in MiB at the flag).
	PeerRateBytes int64
	// IdleTimeout is how long a room with no session stays in memory
	// before it is unloaded with RoomStore.Release (--idle-timeout).
	IdleTimeout time.Duration
	// MaxConnections caps concurrent WebSocket connections; over it the
	// upgrade is refused with 503 and Retry-After. 0 means no limit
	// (--max-connections).
	MaxConnections int
	// SendTimeout is how long one flush to a peer may block before the
	// session is closed with 1011 "server overload" (SPEC: 5 s).
	SendTimeout time.Duration
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed besides the server's own host. Requests without an Origin
	// header (non-browser clients) are not affected.
	AllowedOrigins []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (--trusted-proxies; see proxy.go).
	// From any other peer those headers are ignored.
	TrustedProxies []netip.Prefix
	// Admission decides whether a hello may join a room and what its
	// token grants; nil admits everyone with no grant (open rooms). A nil
	// Grant with a nil error admits without a token. Its error text is
	// sent to the client in an error envelope, then the session is closed
	// with 1008, so it must not contain secrets.
	Admission func(room string, h *protocol.Hello) (*Grant, error)
	// RoomStore holds room histories; nil keeps them in memory.
	RoomStore RoomStore
	// WritePolicy decides whether a node's author may write each of its
	// ops' paths; nil allows everything.
	WritePolicy WritePolicy
	// Commands handles control commands arriving on the WebSocket path;
	// nil handles none (their frames are ignored like unknown types).
	Commands Commands
	// Metrics is where the data plane's collectors are registered; nil
	// registers them on a private registry.
	Metrics prometheus.Registerer
	// PingInterval is how often the server pings each session; a session
	// that sends nothing (not even a pong) for 2.5 intervals is dropped.
	PingInterval time.Duration
	Logger       *slog.Logger
	// Now is the wall clock of the ingest checks (a node's wall_ms may not
	// be more than 24 h ahead of it). Rate limits and timeouts use the
	// monotonic clock.
	Now func() time.Time
}

// withDefaults validates c and fills in its zero values.
func (c Config) withDefaults() (Config, error) {
	if len(c.ServerKey) != ed25519.PrivateKeySize {
		return c, fmt.Errorf("dataplane: ServerKey must be an ed25519 private key (%d bytes), got %d bytes", ed25519.PrivateKeySize, len(c.ServerKey))
	}
	if c.HandshakeTimeout < 0 || c.MaxFrameBytes < 0 || c.BroadcastCapacity < 0 || c.PingInterval < 0 ||
		c.PeerRateNodes < 0 || c.PeerRateBytes < 0 || c.IdleTimeout < 0 || c.MaxConnections < 0 || c.SendTimeout < 0 {
		return c, errors.New("dataplane: durations, sizes, rates and limits in Config must not be negative")
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
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.RoomStore == nil {
		c.RoomStore = NewMemRoomStore()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	origins := make([]string, 0, len(c.AllowedOrigins))
	for _, o := range c.AllowedOrigins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			return c, fmt.Errorf("dataplane: allowed origin %q: %w", o, err)
		}
		origins = append(origins, norm)
	}
	c.AllowedOrigins = origins
	proxies, err := checkTrustedProxies(c.TrustedProxies)
	if err != nil {
		return c, err
	}
	c.TrustedProxies = proxies
	return c, nil
}

// normalizeOrigin reduces an origin to lower-case scheme://host[:port], the
// form browsers send, and refuses anything else.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", errors.New("must be http(s)://host[:port]")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
