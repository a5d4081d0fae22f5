package loadgen

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"time"

	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// AdminRead selects the call an admin read run makes.
type AdminRead string

const (
	// AdminReadPolicy is PolicyService.GetPolicy (get-policy): room-scoped
	// and gated on policy.admin, so every call runs the whole interceptor
	// chain, and by default a linearizable read (ReadIndex on the leader).
	AdminReadPolicy AdminRead = "policy"
	// AdminReadStatus is ClusterService.GetStatus (cluster.status): a
	// node-local read, never forwarded, so it measures one node's admin
	// path alone.
	AdminReadStatus AdminRead = "status"
)

// AdminConfig describes an admin-API run: Clients concurrent clients call
// one admin method back to back, spread round robin over Addrs.
type AdminConfig struct {
	// AdminTarget is where the clients call: client i calls
	// Addrs[i mod len(Addrs)]. Writes that reach a follower are forwarded
	// to the leader by the follower, as for any operator. The token must
	// hold policy.admin (writes, policy reads) or cluster.read (status
	// reads).
	AdminTarget
	// ServerPID, when not 0, is a node's process id on this machine: its
	// CPU time and RSS are read from /proc around the measured window.
	ServerPID int
	// RoomPrefix starts every room name; a random run id follows it, so
	// each run writes fresh rooms. Default "bench".
	RoomPrefix string
	Clients    int
	// ClientsPerConn is how many clients share one gRPC connection (HTTP/2
	// multiplexes their calls); 1 gives every client its own.
	ClientsPerConn int
	Warmup         time.Duration
	Duration       time.Duration
	// Timeout bounds each call.
	Timeout time.Duration
	// RoomWrites is how many SetPolicy entries a client writes into one
	// room before it moves on to a fresh one (writes only): each entry
	// lengthens the room's policy timeline, which SetPolicy copies.
	RoomWrites int
	// Read is the call of a read run (default AdminReadPolicy).
	Read AdminRead
	// Stale sends `nodalmerge-consistency: stale` with reads: the node
	// answers from its own state without a leader round trip.
	Stale  bool
	Logger *slog.Logger
}

// DefaultAdminConfig: one client on the embedded node's admin address,
// eight clients per connection, 10 s after 1 s of warm-up, 100 writes per
// room. TLS and Token have no default here: the command line loads them
// from the state folder.
func DefaultAdminConfig() AdminConfig {
	return AdminConfig{
		AdminTarget:    AdminTarget{Addrs: []string{DefaultAdminAddr}},
		RoomPrefix:     "bench",
		Clients:        1,
		ClientsPerConn: 8,
		Warmup:         time.Second,
		Duration:       10 * time.Second,
		Timeout:        10 * time.Second,
		RoomWrites:     100,
		Read:           AdminReadPolicy,
	}
}

// adminMode tells validate which fields apply.
type adminMode int

const (
	adminWrites adminMode = iota
	adminReads
)

func (c *AdminConfig) validate(mode adminMode) error {
	if err := c.AdminTarget.validate(); err != nil {
		return err
	}
	switch {
	case c.ServerPID < 0:
		return cfgErr("ServerPID", "must not be negative, got %d", c.ServerPID)
	case c.Clients < 1:
		return cfgErr("Clients", "must be at least 1, got %d", c.Clients)
	case c.ClientsPerConn < 1:
		return cfgErr("ClientsPerConn", "must be at least 1, got %d", c.ClientsPerConn)
	case c.Warmup < 0:
		return cfgErr("Warmup", "must not be negative, got %s", c.Warmup)
	case c.Duration <= 0:
		return cfgErr("Duration", "must be positive, got %s", c.Duration)
	case c.Timeout <= 0:
		return cfgErr("Timeout", "must be positive, got %s", c.Timeout)
	}
	// The longest room name a run makes must be valid.
	if !roomname.Valid(c.RoomPrefix) || !roomname.Valid(adminRoom(c.RoomPrefix+"-00000000", c.Clients, 1<<31)) {
		return cfgErr("RoomPrefix", "must be a short room name prefix (letters, digits and -._~), got %q", c.RoomPrefix)
	}
	switch mode {
	case adminWrites:
		if c.RoomWrites < 1 {
			return cfgErr("RoomWrites", "must be at least 1, got %d", c.RoomWrites)
		}
		if c.Stale {
			return cfgErr("Stale", "only applies to reads")
		}
	case adminReads:
		if c.Read != AdminReadPolicy && c.Read != AdminReadStatus {
			return cfgErr("Read", "must be %q or %q, got %q", AdminReadPolicy, AdminReadStatus, c.Read)
		}
		if c.Stale && c.Read == AdminReadStatus {
			return cfgErr("Stale", "only applies to policy reads: cluster.status is always answered by the node called")
		}
	}
	return nil
}

// runPrefix is the configured prefix with a fresh run id.
func runPrefix(prefix string) string {
	var run [4]byte
	_, _ = rand.Read(run[:]) // crypto/rand.Read never fails
	return prefix + "-" + hex.EncodeToString(run[:])
}

// adminRoom names client i's n-th room.
func adminRoom(prefix string, client, n int) string {
	return prefix + "-c" + strconv.Itoa(client) + "-" + strconv.Itoa(n)
}
