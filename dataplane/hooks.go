package dataplane

import (
	"context"
	"crypto/ed25519"
)

// WritePolicy is the room write policy consulted by ingest after a node's
// parents are resolved and before it is stored (SPEC ingest order). It is
// called once per op path of each node; a node with a denied path is
// rejected alone with reason "policy denies write to <path>". It runs
// under the room's commit, so it must be fast and must not call back into
// the Server.
type WritePolicy interface {
	AllowWrite(room string, author ed25519.PublicKey, lamport uint64, path string) bool
}

// Commands handles control commands on the WebSocket path (SPEC section
// 4). A frame whose type Has reports is passed to Handle on the session's
// reader goroutine, with no data-plane lock held; the frame Handle returns
// (if non-nil) is queued to that session. Built-in message types (pack,
// request, subscribe, presence, webrtc-*) never reach it.
type Commands interface {
	Has(typ string) bool
	Handle(ctx context.Context, c CommandCall) []byte
}

// CommandCall is one control command from a session.
type CommandCall struct {
	Room string
	Type string
	// Frame is the whole frame as received (a JSON object; see
	// protocol.ParseCommand).
	Frame   []byte
	Pubkey  string
	Session SessionInfo
}

// SessionInfo describes a joined session to hooks and to CloseSessions.
// It is a plain struct so that later issues can add fields (token
// capabilities, expiry) without changing any signature.
type SessionInfo struct {
	// ID is unique per session for the life of the Server.
	ID       uint64
	Room     string
	Pubkey   string // lower-case hex
	PeerID   string
	PeerType string
	Remote   string // client address as seen by the server
	// Grant is what the session's token allows (the zero Grant without
	// a token). Its slices are shared and must not be modified.
	Grant Grant
}
