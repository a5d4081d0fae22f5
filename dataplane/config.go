package dataplane

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// Defaults (SPEC section 1 names the flags that set them).
const (
	DefaultHandshakeTimeout = 15 * time.Second
	DefaultMaxFrameBytes    = 1 << 20
	DefaultSendQueue        = 512
	DefaultPingInterval     = 30 * time.Second
)

// Config configures a Server. Zero values take the defaults.
type Config struct {
	// ServerKey is the node's own keypair: its public half is
	// welcome.server_pubkey and the `from` of catch-up packs.
	ServerKey ed25519.PrivateKey
	// HandshakeTimeout bounds the wait for hello (--handshake-timeout).
	HandshakeTimeout time.Duration
	// MaxFrameBytes is the largest frame accepted from a client; a larger
	// one closes the session with 1009 "message too big".
	MaxFrameBytes int64
	// SendQueue is the per-session queue length (--broadcast-capacity).
	SendQueue int
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed besides the server's own host. Requests without an Origin
	// header (non-browser clients) are not affected.
	AllowedOrigins []string
	// Admission decides whether a hello may join a room; nil admits
	// everyone (open rooms). Its error text is sent to the client in an
	// error envelope, then the session is closed with 1008, so it must not
	// contain secrets.
	Admission func(room string, h *protocol.Hello) error
	// RoomStore holds room histories; nil keeps them in memory.
	RoomStore RoomStore
	// PingInterval is how often the server pings each session; a session
	// that sends nothing (not even a pong) for 2.5 intervals is dropped.
	PingInterval time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// withDefaults validates c and fills in its zero values.
func (c Config) withDefaults() (Config, error) {
	if len(c.ServerKey) != ed25519.PrivateKeySize {
		return c, fmt.Errorf("dataplane: ServerKey must be an ed25519 private key (%d bytes), got %d bytes", ed25519.PrivateKeySize, len(c.ServerKey))
	}
	if c.HandshakeTimeout < 0 || c.MaxFrameBytes < 0 || c.SendQueue < 0 || c.PingInterval < 0 {
		return c, errors.New("dataplane: HandshakeTimeout, MaxFrameBytes, SendQueue and PingInterval must not be negative")
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	// A session needs room for at least its welcome (with catch-up, one
	// slot), an error and a close, plus a little live traffic.
	c.SendQueue = max(c.SendQueue, 4)
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
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
