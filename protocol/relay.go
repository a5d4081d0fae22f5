package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxPresenceTTLMs bounds presence.ttl_ms (one day): a lease longer than
// that is a bug on the client, not a presence.
const MaxPresenceTTLMs = 24 * 60 * 60 * 1000

// Presence is ephemeral state (cursor, selection, status) relayed to the
// room's other sessions and never stored.
//
// From the client: Data (required, any JSON value), TTLMs (optional, how
// long the state holds) and NowUnixMs (the client's clock when it sent the
// state; required with TTLMs, since a lease without its start is
// meaningless). The relay carries From (the sender's pubkey), Data and
// TTLMs.
type Presence struct {
	Type      string          `json:"type"`
	From      string          `json:"from,omitempty"`
	Data      json.RawMessage `json:"data"`
	TTLMs     *uint64         `json:"ttl_ms,omitempty"`
	NowUnixMs *uint64         `json:"now_unix_ms,omitempty"`
}

// MarshalJSON fixes the type and encodes missing data as null.
func (m Presence) MarshalJSON() ([]byte, error) {
	type wire Presence
	m.Type = TypePresence
	if m.Data == nil {
		m.Data = json.RawMessage("null")
	}
	return json.Marshal(wire(m))
}

// ParsePresence parses a client presence. The client's own "from", if any,
// is dropped: the server sets it.
func ParsePresence(frame []byte) (*Presence, error) {
	var body struct {
		Data      json.RawMessage `json:"data"`
		TTLMs     json.RawMessage `json:"ttl_ms"`
		NowUnixMs json.RawMessage `json:"now_unix_ms"`
	}
	if err := json.Unmarshal(frame, &body); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidPresence)
	}
	if body.Data == nil {
		return nil, fmt.Errorf("%w: missing data", ErrInvalidPresence)
	}
	p := &Presence{Type: TypePresence, Data: compactJSON(body.Data)}
	var err error
	if p.TTLMs, err = optionalUint(body.TTLMs, "ttl_ms"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPresence, err)
	}
	if p.NowUnixMs, err = optionalUint(body.NowUnixMs, "now_unix_ms"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPresence, err)
	}
	if p.TTLMs != nil {
		if *p.TTLMs == 0 || *p.TTLMs > MaxPresenceTTLMs {
			return nil, fmt.Errorf("%w: ttl_ms must be 1 to %d", ErrInvalidPresence, MaxPresenceTTLMs)
		}
		if p.NowUnixMs == nil {
			return nil, fmt.Errorf("%w: ttl_ms requires now_unix_ms (the client clock the lease starts from)", ErrInvalidPresence)
		}
	}
	return p, nil
}

// WebRTC is a signalling message (offer, answer, ICE candidate) relayed
// between peers as is, with From set by the server. To, when set, names
// the one peer (pubkey) it is for; otherwise every other session of the
// room gets it.
type WebRTC struct {
	Type string
	From string
	To   string
	// Fields holds every field of the client's object except type and
	// from, passed through untouched.
	Fields map[string]json.RawMessage
}

// MarshalJSON writes the fields with the type and from set.
func (m WebRTC) MarshalJSON() ([]byte, error) {
	out := make(map[string]json.RawMessage, len(m.Fields)+2)
	for k, v := range m.Fields {
		out[k] = v
	}
	var err error
	if out["type"], err = json.Marshal(m.Type); err != nil {
		return nil, err
	}
	if m.From != "" {
		if out["from"], err = json.Marshal(m.From); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}

// ParseWebRTC parses a webrtc-offer, webrtc-answer or webrtc-ice frame.
// "to", if present, must be a 64-hex pubkey (returned lower-cased).
func ParseWebRTC(frame []byte) (*WebRTC, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidWebRTC)
	}
	m := &WebRTC{Fields: fields}
	if err := json.Unmarshal(fields["type"], &m.Type); err != nil || !IsWebRTC(m.Type) {
		return nil, fmt.Errorf("%w: type must be %s, %s or %s", ErrInvalidWebRTC, TypeWebRTCOffer, TypeWebRTCAnswer, TypeWebRTCICE)
	}
	delete(fields, "type")
	delete(fields, "from")
	if raw, ok := fields["to"]; ok && string(raw) != "null" {
		var to string
		if err := json.Unmarshal(raw, &to); err != nil {
			return nil, fmt.Errorf("%w: to must be a string", ErrInvalidWebRTC)
		}
		norm, ok := normalizeHex32(to)
		if !ok {
			return nil, fmt.Errorf("%w: to must be 64 hex characters", ErrInvalidWebRTC)
		}
		m.To = norm
		fields["to"], _ = json.Marshal(norm)
	}
	return m, nil
}

// optionalUint decodes an optional non-negative integer (absent or null:
// nil).
func optionalUint(raw json.RawMessage, field string) (*uint64, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var v uint64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s must be a non-negative integer", field)
	}
	return &v, nil
}

// compactJSON removes insignificant whitespace so that relays are as small
// as the data allows; raw is already known to be valid JSON.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
