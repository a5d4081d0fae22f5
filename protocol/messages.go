package protocol

import "encoding/json"

// Message type names (SPEC section 2).
const (
	TypeHello        = "hello"
	TypeWelcome      = "welcome"
	TypePack         = "pack"
	TypePackAck      = "pack-ack"
	TypeRequest      = "request"
	TypeSubscribe    = "subscribe"
	TypeSubscribeAck = "subscribe-ack"
	TypePeerJoined   = "peer-joined"
	TypePeerLeft     = "peer-left"
	TypeError        = "error"
	TypePresence     = "presence"
	TypeWebRTCOffer  = "webrtc-offer"
	TypeWebRTCAnswer = "webrtc-answer"
	TypeWebRTCICE    = "webrtc-ice"
)

// IsWebRTC reports whether typ is one of the relayed WebRTC signalling
// types.
func IsWebRTC(typ string) bool {
	return typ == TypeWebRTCOffer || typ == TypeWebRTCAnswer || typ == TypeWebRTCICE
}

// Hello is the client's first frame. ParseHello validates it; the hex fields
// are lower-cased there so the server can compare them as strings.
type Hello struct {
	Type      string   `json:"type"`
	Pubkey    string   `json:"pubkey"`
	Frontier  []string `json:"frontier"`
	Subscribe []string `json:"subscribe,omitempty"`
	// Caps is sync-feature negotiation (supports_ibf, ...), unrelated to
	// the capability classes inside a token.
	Caps map[string]bool `json:"caps,omitempty"`
	// Token is kept raw: locked-room admission verifies it.
	Token    json.RawMessage `json:"token,omitempty"`
	PeerID   string          `json:"peer_id,omitempty"`
	PeerType string          `json:"peer_type,omitempty"`
}

// MarshalJSON fixes the type and encodes a nil frontier as [].
func (m Hello) MarshalJSON() ([]byte, error) {
	type wire Hello
	m.Type = TypeHello
	m.Frontier = nonNil(m.Frontier)
	return json.Marshal(wire(m))
}

// PeerInfo describes one peer (one public key) of a room.
type PeerInfo struct {
	Pubkey   string `json:"pubkey"`
	PeerID   string `json:"peer_id"`
	PeerType string `json:"peer_type"`
}

// Welcome answers a valid hello.
type Welcome struct {
	Type     string   `json:"type"`
	Root     string   `json:"root"`
	Frontier []string `json:"frontier"`
	// Missing lists the ids of the client's frontier that the server lacks.
	Missing      []string        `json:"missing"`
	Caps         map[string]bool `json:"caps"`
	ServerPubkey string          `json:"server_pubkey"`
	// Peers are the room's other peers, one entry per public key.
	Peers []PeerInfo `json:"peers"`
}

// MarshalJSON fixes the type and encodes nil arrays and maps as empty.
func (m Welcome) MarshalJSON() ([]byte, error) {
	type wire Welcome
	m.Type = TypeWelcome
	m.Frontier = nonNil(m.Frontier)
	m.Missing = nonNil(m.Missing)
	m.Peers = nonNil(m.Peers)
	if m.Caps == nil {
		m.Caps = map[string]bool{}
	}
	return json.Marshal(wire(m))
}

// Pack carries nodes: standard base64 of a protobuf syncv1.Pack. Clients
// send only Nodes; the server adds From (the author of the relay: the
// sending peer's pubkey, or its own for catch-up) and Root (the room's
// state digest after the pack).
type Pack struct {
	Type  string `json:"type"`
	From  string `json:"from,omitempty"`
	Nodes string `json:"nodes"`
	Root  string `json:"root,omitempty"`
}

// MarshalJSON fixes the type.
func (m Pack) MarshalJSON() ([]byte, error) {
	type wire Pack
	m.Type = TypePack
	return json.Marshal(wire(m))
}

// Rejection names one rejected node and why (ext).
type Rejection struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// PackAck answers a pack: Incoming nodes received, of which Accepted were
// stored or already present (duplicates are accepted idempotently) and
// Rejected failed a check; Accepted+Rejected == Incoming.
type PackAck struct {
	Type     string `json:"type"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	Incoming int    `json:"incoming"`
	// Rejections (ext) gives each rejected node's id and reason.
	Rejections []Rejection `json:"rejections"`
}

// MarshalJSON fixes the type and encodes nil rejections as [].
func (m PackAck) MarshalJSON() ([]byte, error) {
	type wire PackAck
	m.Type = TypePackAck
	m.Rejections = nonNil(m.Rejections)
	return json.Marshal(wire(m))
}

// Request asks for every node the sender lacks, given the ids it knows
// (typically its frontier).
type Request struct {
	Type  string   `json:"type"`
	Known []string `json:"known"`
}

// MarshalJSON fixes the type and encodes nil known as [].
func (m Request) MarshalJSON() ([]byte, error) {
	type wire Request
	m.Type = TypeRequest
	m.Known = nonNil(m.Known)
	return json.Marshal(wire(m))
}

// Subscribe replaces the session's subscription patterns.
type Subscribe struct {
	Type     string   `json:"type"`
	Patterns []string `json:"patterns"`
}

// MarshalJSON fixes the type and encodes nil patterns as [].
func (m Subscribe) MarshalJSON() ([]byte, error) {
	type wire Subscribe
	m.Type = TypeSubscribe
	m.Patterns = nonNil(m.Patterns)
	return json.Marshal(wire(m))
}

// SubscribeAck confirms the patterns now in force.
type SubscribeAck struct {
	Type     string   `json:"type"`
	Patterns []string `json:"patterns"`
}

// MarshalJSON fixes the type and encodes nil patterns as [].
func (m SubscribeAck) MarshalJSON() ([]byte, error) {
	type wire SubscribeAck
	m.Type = TypeSubscribeAck
	m.Patterns = nonNil(m.Patterns)
	return json.Marshal(wire(m))
}

// PeerJoined tells a room's members that a public key got its first
// session. From is that pubkey.
type PeerJoined struct {
	Type     string `json:"type"`
	From     string `json:"from"`
	Pubkey   string `json:"pubkey"`
	PeerID   string `json:"peer_id"`
	PeerType string `json:"peer_type"`
}

// MarshalJSON fixes the type.
func (m PeerJoined) MarshalJSON() ([]byte, error) {
	type wire PeerJoined
	m.Type = TypePeerJoined
	return json.Marshal(wire(m))
}

// PeerLeft tells a room's members that a public key's last session left.
type PeerLeft struct {
	Type     string `json:"type"`
	From     string `json:"from"`
	Pubkey   string `json:"pubkey"`
	PeerID   string `json:"peer_id"`
	PeerType string `json:"peer_type"`
}

// MarshalJSON fixes the type.
func (m PeerLeft) MarshalJSON() ([]byte, error) {
	type wire PeerLeft
	m.Type = TypePeerLeft
	return json.Marshal(wire(m))
}

// Error reports a problem with the client's input; unless a close follows,
// the socket stays open.
type Error struct {
	Type string `json:"type"`
	Msg  string `json:"msg"`
}

// MarshalJSON fixes the type.
func (m Error) MarshalJSON() ([]byte, error) {
	type wire Error
	m.Type = TypeError
	return json.Marshal(wire(m))
}

// nonNil turns a nil slice into an empty one so it encodes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
