package loadgen

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// RevokeBy selects what a revoke run's TokenService.Revoke call names.
type RevokeBy string

const (
	// RevokeByToken revokes the room token id (the hex of the first 16
	// bytes of SHA-256 over the signature) of the revoked peer's token.
	RevokeByToken RevokeBy = "token"
	// RevokeByPeer revokes the peer in the room (room + peer_pubkey).
	RevokeByPeer RevokeBy = "peer"
)

// RevokeConfig describes a revocation-latency run. Each round locks a
// fresh room to the run's room key, opens Sessions sessions spread over
// URLs (one per node), Peers distinct peer keys among them,
// each session with the token of its peer; once every session has its
// welcome it calls TokenService.Revoke for peer 0 on Admin.Addrs[0] and
// times, per session of that peer, the call → the 4003 close the client
// reads. The other peers' sessions must stay open.
type RevokeConfig struct {
	// URLs are WebSocket base URLs ("ws://host:port"), one per node of a
	// cluster; the sessions are spread over them round robin
	// (revokePlace).
	URLs []string
	// Admin is where room keys and locks are set and Revoke is called
	// (Admin.Addrs[0]; a follower forwards to the leader). The token needs
	// room.admin and token.mint.
	Admin AdminTarget
	// RoomPrefix starts every room name; a random run id follows it.
	// Default "bench".
	RoomPrefix string
	// Sessions opened per round.
	Sessions int
	// Peers is how many peer keys the sessions are spread over, each
	// peer's sessions round robin over the nodes (revokePlace). 1 revokes
	// every session at once; Sessions revokes one and checks that the
	// other Sessions-1 are untouched.
	Peers int
	By    RevokeBy
	// Rounds are repeated with a new room and new peers each.
	Rounds int
	// CloseTimeout is how long after the call a round waits for every
	// revoked session to close (SPEC §3 says within one second).
	CloseTimeout time.Duration
	// RoomKeySeed is the hex of the room key's 32-byte Ed25519 seed;
	// empty makes a fresh key. A secret: never reported.
	RoomKeySeed string
	Logger      *slog.Logger
}

// DefaultRevokeConfig: 300 sessions of one peer on the embedded node,
// revoked by token id, 5 rounds, 10 s for the closes.
func DefaultRevokeConfig() RevokeConfig {
	return RevokeConfig{
		URLs:         []string{"ws://127.0.0.1:7878"},
		Admin:        AdminTarget{Addrs: []string{DefaultAdminAddr}},
		RoomPrefix:   "bench",
		Sessions:     300,
		Peers:        1,
		By:           RevokeByToken,
		Rounds:       5,
		CloseTimeout: 10 * time.Second,
	}
}

// validate checks the config and answers the URLs' WebSocket bases.
func (c *RevokeConfig) validate() ([]string, error) {
	if len(c.URLs) == 0 {
		return nil, cfgErr("URLs", "must name at least one WebSocket URL")
	}
	bases := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		var err error
		if bases[i], err = parseBaseURL("URLs", u); err != nil {
			return nil, err
		}
	}
	switch {
	case c.Sessions < 1:
		return nil, cfgErr("Sessions", "must be at least 1, got %d", c.Sessions)
	case c.Peers < 1 || c.Peers > c.Sessions:
		return nil, cfgErr("Peers", "must be between 1 and the sessions (%d), got %d", c.Sessions, c.Peers)
	case c.By != RevokeByToken && c.By != RevokeByPeer:
		return nil, cfgErr("By", "must be %q or %q, got %q", RevokeByToken, RevokeByPeer, c.By)
	case c.Rounds < 1:
		return nil, cfgErr("Rounds", "must be at least 1, got %d", c.Rounds)
	case c.CloseTimeout <= 0:
		return nil, cfgErr("CloseTimeout", "must be positive, got %s", c.CloseTimeout)
	}
	prefix, err := checkRoomPrefix(c.RoomPrefix)
	if err != nil {
		return nil, err
	}
	if !roomname.Valid(revokeRoom(prefix+"-00000000", c.Rounds)) {
		return nil, cfgErr("RoomPrefix", "is too long for a room name, got %q", c.RoomPrefix)
	}
	if _, err := parseRoomKeySeed(c.RoomKeySeed); err != nil {
		return nil, err
	}
	return bases, c.Admin.validate()
}

// revokeRoom names round r's room.
func revokeRoom(prefix string, r int) string { return prefix + "-revoke" + strconv.Itoa(r) }

// revokePlace answers the node (index into the URLs) and the peer of
// session i in round r: peer i mod peers, and that peer's k-th session on
// node (peer + k + r) mod nodes. So every peer has a session (sessions ≥
// peers), each peer's sessions go round robin over the nodes (the revoked
// peer 0 is on every node once it has as many sessions as there are
// nodes, and a peer 0 with fewer starts on the next node each round), and
// the nodes' loads differ by at most one session per peer.
func revokePlace(i, round, nodes, peers int) (node, peer int) {
	peer = i % peers
	return (peer + i/peers + round) % nodes, peer
}
