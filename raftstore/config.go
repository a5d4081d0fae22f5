package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
	"unicode"

	"github.com/hashicorp/raft"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Config configures Open. Only NodeID, Bind and the two TLS configs are
// required.
type Config struct {
	// NodeID is this node's Raft server id; stable across restarts.
	NodeID string
	// Dir holds the Raft log (raft/wal/), its lock (raft/LOCK) and
	// snapshots (raft/snapshots/). Empty keeps everything in memory: fine
	// for a dev node, gone on restart.
	Dir string
	// Bind is the Raft listen address, e.g. "127.0.0.1:7880" or
	// "127.0.0.1:0" for an ephemeral port.
	Bind string
	// Advertise is the Raft address other nodes dial. Empty means the
	// listener's actual address (which must then not be 0.0.0.0 or ::).
	Advertise string
	// ServerTLS serves the Raft listener. It must require and verify
	// client certificates: only nodes may speak Raft.
	ServerTLS *tls.Config
	// ClientTLS dials other nodes' Raft listeners.
	ClientTLS *tls.Config
	// AdminAddr and PublicAddr are recorded in this node's member record
	// (EnsureSelfMember) so that others can forward to and report it.
	AdminAddr, PublicAddr string
	// Logger receives the store's and Raft's logs; nil discards them.
	Logger *slog.Logger

	// OnApply, if set, is called on this node after each command the FSM
	// applied successfully (rejected commands are not reported), with the
	// command's log index. Calls come in log order from one goroutine,
	// never concurrently and never under the FSM lock, so the callback may
	// read the Store; by then the state may already include later commands.
	// The FSM never waits for the callback: events queue without bound
	// (Status.ObserverBacklog), so a slow observer only delays itself.
	// After a restart Raft replays the log past the latest snapshot, so
	// commands may be reported again with their original indexes. The cmd
	// is the observer's own copy. Not called after Close.
	OnApply func(index uint64, cmd *statev1.Command)
	// OnRestore, if set, is called (in order with OnApply, on the same
	// goroutine) after the state was replaced by a snapshot: at start from
	// the local snapshot, or when the leader installs one. Observers
	// resynchronise from the reads; the commands folded into the snapshot
	// are never reported individually.
	OnRestore func()
	// OnLeaderChange, if set, is called from its own goroutine whenever
	// the leader this node knows of changes: isLeader says whether it is
	// this node, leaderID is "" while no leader is known. Consecutive
	// duplicates are suppressed; quick flaps may be coalesced into the
	// latest state. Not called after Close.
	OnLeaderChange func(isLeader bool, leaderID string)

	// logStore selects the on-disk Raft log (tests and benchmarks compare
	// both); the zero value is the default, raft-wal.
	logStore logStoreKind
}

// Timing, tuned for LAN and loopback and for hosts that are not idle. A
// lone voter starts an election after a random wait in [HeartbeatTimeout,
// 2*HeartbeatTimeout), so 500 ms gives a self-elected single node within
// 0.5–1 s. Heartbeats go out every HeartbeatTimeout/10 (50 ms). The leader
// lease equals the heartbeat timeout: with 200 ms, leaders of a loaded
// 2-core host (race-enabled tests, a load generator beside the cluster)
// stepped down on scheduling stalls alone ("failed to contact quorum"),
// turning a busy moment into an election. hashicorp/raft's own defaults
// (1 s) would double the failover time for no gain on a LAN.
const (
	heartbeatTimeout   = 500 * time.Millisecond
	electionTimeout    = 500 * time.Millisecond
	leaderLeaseTimeout = 500 * time.Millisecond
	// transportTimeout is the I/O deadline of one Raft RPC.
	transportTimeout = 10 * time.Second
	// transportMaxPool is how many idle outbound connections are kept
	// per peer.
	transportMaxPool = 3
	// logCacheSize keeps the most recent entries in memory so replication
	// to followers does not read them back from disk.
	logCacheSize = 512
	// snapshotsRetained is how many file snapshots are kept on disk.
	snapshotsRetained = 2
	// maxCommandBytes caps one proposed command: Raft carries small
	// control state, never bulk data.
	maxCommandBytes = 1 << 20
	// maxNodeIDLen bounds node ids, which end up in logs, certificates
	// and the Raft configuration.
	maxNodeIDLen = 128
)

// validate checks the configuration and returns a clear error naming the
// offending field.
func (c *Config) validate() error {
	if err := validateNodeID(c.NodeID); err != nil {
		return fmt.Errorf("raftstore: config: NodeID: %w", err)
	}
	if c.Bind == "" {
		return errors.New("raftstore: config: Bind (raft listen address) is required")
	}
	if _, _, err := net.SplitHostPort(c.Bind); err != nil {
		return fmt.Errorf("raftstore: config: Bind %q: %w", c.Bind, err)
	}
	if c.Advertise != "" {
		if err := validateAdvertise(c.Advertise); err != nil {
			return fmt.Errorf("raftstore: config: Advertise: %w", err)
		}
	}
	if c.ServerTLS == nil {
		return errors.New("raftstore: config: ServerTLS is required (the raft port is mTLS only)")
	}
	if c.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return fmt.Errorf("raftstore: config: ServerTLS.ClientAuth is %v, want RequireAndVerifyClientCert", c.ServerTLS.ClientAuth)
	}
	if c.ServerTLS.Certificates == nil && c.ServerTLS.GetCertificate == nil && c.ServerTLS.GetConfigForClient == nil {
		return errors.New("raftstore: config: ServerTLS has no certificate")
	}
	if c.ClientTLS == nil {
		return errors.New("raftstore: config: ClientTLS is required (the raft port is mTLS only)")
	}
	if c.ClientTLS.Certificates == nil && c.ClientTLS.GetClientCertificate == nil {
		return errors.New("raftstore: config: ClientTLS has no client certificate")
	}
	return nil
}

// validateNodeID accepts non-empty printable ids without spaces: they end
// up in logs, certificates and the Raft configuration.
func validateNodeID(id string) error {
	if id == "" {
		return errors.New("node id is required")
	}
	if len(id) > maxNodeIDLen {
		return fmt.Errorf("node id longer than %d bytes", maxNodeIDLen)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("node id %q contains space or control characters", id)
		}
	}
	return nil
}

// validateAdvertise requires host:port with a concrete host and a non-zero
// port: it is what peers dial, forever recorded in the Raft configuration.
func validateAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: unspecified address is not reachable by peers", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return nil
}

// raftConfig builds the hashicorp/raft configuration.
func (c *Config) raftConfig(logger *hclogAdapter) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = heartbeatTimeout
	rc.ElectionTimeout = electionTimeout
	rc.LeaderLeaseTimeout = leaderLeaseTimeout
	rc.Logger = logger
	// Skip the legacy per-peer metric names (peer id in the name rather
	// than a label); the labelled ones carry the same data.
	rc.NoLegacyTelemetry = true
	return rc
}

// advertiseAddr is a net.Addr for an advertised host:port that may be a
// DNS name (so it cannot be a *net.TCPAddr).
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
