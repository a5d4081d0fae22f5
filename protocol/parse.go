package protocol

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// Errors whose text is sent to the client verbatim in an error envelope.
// Field errors wrap ErrInvalidHello, ErrInvalidPack, ErrInvalidRequest or
// ErrInvalidSubscribe and name the field; none of them echo the input.
var (
	ErrInvalidJSON      = errors.New("invalid JSON")
	ErrMissingType      = errors.New("invalid message: missing type")
	ErrExpectedHello    = errors.New("expected hello")
	ErrInvalidHello     = errors.New("invalid hello")
	ErrInvalidPack      = errors.New("invalid pack")
	ErrInvalidRequest   = errors.New("invalid request")
	ErrInvalidSubscribe = errors.New("invalid subscribe")
	ErrInvalidPresence  = errors.New("invalid presence")
	ErrInvalidWebRTC    = errors.New("invalid webrtc message")
	ErrInvalidCommand   = errors.New("invalid command")
)

// ParseEnvelope returns the type of a frame: ErrInvalidJSON when the frame is
// not JSON, ErrMissingType when it is JSON but not an object with a
// non-empty string "type". It decodes only the type; the message body is
// parsed by the typed parser afterwards.
//
// Like the rest of encoding/json, the key match is case-insensitive for
// this envelope; ParseHello, the one parser that decides admission, matches
// keys exactly.
func ParseEnvelope(frame []byte) (typ string, err error) {
	var env struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return "", ErrInvalidJSON
		}
		// Valid JSON of the wrong shape: an array, a string, a number
		// type, ...
		return "", ErrMissingType
	}
	if env.Type == nil || *env.Type == "" {
		return "", ErrMissingType
	}
	return *env.Type, nil
}

// ParseHello parses and validates the first frame of a session. A frame that
// is not a JSON object whose "type" is exactly "hello" gives
// ErrExpectedHello; a hello with a bad field gives an error wrapping
// ErrInvalidHello that names the field. Hex fields come back lower-cased.
// Unknown fields are ignored so that newer clients can talk to this server.
func ParseHello(frame []byte) (*Hello, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil || fields == nil {
		return nil, ErrExpectedHello
	}
	var typ string
	if err := json.Unmarshal(fields["type"], &typ); err != nil || typ != TypeHello {
		return nil, ErrExpectedHello
	}
	h := &Hello{Type: TypeHello}

	raw, ok := fields["pubkey"]
	if !ok {
		return nil, fmt.Errorf("%w: missing pubkey", ErrInvalidHello)
	}
	if err := json.Unmarshal(raw, &h.Pubkey); err != nil {
		return nil, fmt.Errorf("%w: pubkey must be a string", ErrInvalidHello)
	}
	if h.Pubkey, ok = normalizeHex32(h.Pubkey); !ok {
		return nil, fmt.Errorf("%w: pubkey must be 64 hex characters", ErrInvalidHello)
	}

	var err error
	if h.Frontier, err = hexIDList(fields["frontier"], "frontier"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHello, err)
	}
	if h.Subscribe, err = patternList(fields["subscribe"], "subscribe"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHello, err)
	}
	if h.Caps, err = capsMap(fields["caps"]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHello, err)
	}
	if tok, ok := fields["token"]; ok && string(tok) != "null" {
		if len(tok) > MaxTokenBytes {
			return nil, fmt.Errorf("%w: token must be at most %d bytes", ErrInvalidHello, MaxTokenBytes)
		}
		h.Token = tok
	}
	if h.PeerID, err = shortString(fields["peer_id"], "peer_id"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHello, err)
	}
	if h.PeerType, err = shortString(fields["peer_type"], "peer_type"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHello, err)
	}
	return h, nil
}

// ParsePack parses a client pack. The nodes themselves are decoded and
// validated by the history package.
func ParsePack(frame []byte) (*Pack, error) {
	var body struct {
		Nodes json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal(frame, &body); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidPack)
	}
	if body.Nodes == nil {
		return nil, fmt.Errorf("%w: missing nodes", ErrInvalidPack)
	}
	p := &Pack{Type: TypePack}
	if err := json.Unmarshal(body.Nodes, &p.Nodes); err != nil {
		return nil, fmt.Errorf("%w: nodes must be a base64 string", ErrInvalidPack)
	}
	return p, nil
}

// ParseRequest parses a request; known ids come back lower-cased.
func ParseRequest(frame []byte) (*Request, error) {
	var body struct {
		Known json.RawMessage `json:"known"`
	}
	if err := json.Unmarshal(frame, &body); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidRequest)
	}
	known, err := hexIDList(body.Known, "known")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return &Request{Type: TypeRequest, Known: known}, nil
}

// ParseSubscribe parses a subscribe.
func ParseSubscribe(frame []byte) (*Subscribe, error) {
	var body struct {
		Patterns json.RawMessage `json:"patterns"`
	}
	if err := json.Unmarshal(frame, &body); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidSubscribe)
	}
	if body.Patterns == nil {
		return nil, fmt.Errorf("%w: missing patterns", ErrInvalidSubscribe)
	}
	patterns, err := patternList(body.Patterns, "patterns")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSubscribe, err)
	}
	return &Subscribe{Type: TypeSubscribe, Patterns: nonNil(patterns)}, nil
}

// hexIDList decodes an optional array of 64-hex ids (absent or null: empty).
func hexIDList(raw json.RawMessage, field string) ([]string, error) {
	list, err := stringList(raw, field, MaxFrontierIDs)
	if err != nil {
		return nil, err
	}
	for i, s := range list {
		norm, ok := normalizeHex32(s)
		if !ok {
			return nil, fmt.Errorf("%s entry %d must be 64 hex characters", field, i)
		}
		list[i] = norm
	}
	return nonNil(list), nil
}

// patternList decodes an optional array of subscription patterns; nil when
// absent or null (no subscription given).
func patternList(raw json.RawMessage, field string) ([]string, error) {
	list, err := stringList(raw, field, MaxPatterns)
	if err != nil {
		return nil, err
	}
	for i, p := range list {
		if p == "" || len(p) > MaxPatternBytes {
			return nil, fmt.Errorf("%s entry %d must be 1 to %d bytes", field, i, MaxPatternBytes)
		}
		if _, err := pathglob.Compile(p); err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", field, i, err)
		}
	}
	return list, nil
}

func stringList(raw json.RawMessage, field string, max int) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s must be an array of strings", field)
	}
	if len(list) > max {
		return nil, fmt.Errorf("%s must have at most %d entries", field, max)
	}
	return list, nil
}

func capsMap(raw json.RawMessage) (map[string]bool, error) {
	if raw == nil {
		return nil, nil
	}
	var caps map[string]bool
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, errors.New("caps must be an object of booleans")
	}
	if len(caps) > MaxCaps {
		return nil, fmt.Errorf("caps must have at most %d entries", MaxCaps)
	}
	for name := range caps {
		if name == "" || len(name) > MaxCapNameBytes {
			return nil, fmt.Errorf("caps names must be 1 to %d bytes", MaxCapNameBytes)
		}
	}
	return caps, nil
}

func shortString(raw json.RawMessage, field string) (string, error) {
	if raw == nil {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", field)
	}
	if len(s) > MaxPeerFieldBytes {
		return "", fmt.Errorf("%s must be at most %d bytes", field, MaxPeerFieldBytes)
	}
	return s, nil
}

// normalizeHex32 checks for 32 bytes of hex and returns it lower-cased.
func normalizeHex32(s string) (string, bool) {
	if len(s) != 64 {
		return "", false
	}
	var b [32]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}
