package controlplane

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// Request limits shared by the services. They keep Raft commands small
// (invariant 3) and error messages bounded.
const (
	maxNodeIDBytes   = 128
	maxAddrBytes     = 255
	maxKidBytes      = 64
	maxTokenIDBytes  = 128
	maxRuleCount     = 256
	maxWritersOfRule = 256
	maxGlobBytes     = 256
	maxPlacement     = 64
	defaultGrace     = 24 * time.Hour
	maxGrace         = 365 * 24 * time.Hour
	maxPrepublish    = 30 * 24 * time.Hour
)

// invalidArg is the INVALID_ARGUMENT status of a command: the message
// names the command and says what to send instead.
func invalidArg(command, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, command+": "+format, args...)
}

// checkRoom applies the one room-name rule.
func checkRoom(command, room string) error {
	if !roomname.Valid(room) {
		return invalidArg(command, "%s", roomname.Help)
	}
	return nil
}

var errPubkeyShape = errors.New("must be 64 hex characters (a 32-byte Ed25519 public key)")

// decodePubkey reads the hex of a 32-byte Ed25519 public key.
func decodePubkey(s string) (ed25519.PublicKey, error) {
	if len(s) != 2*ed25519.PublicKeySize {
		return nil, errPubkeyShape
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errPubkeyShape
	}
	return ed25519.PublicKey(b), nil
}

// checkPubkey is decodePubkey with the command's InvalidArgument.
func checkPubkey(command, field, s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, invalidArg(command, "%s is required: %s", field, errPubkeyShape)
	}
	pub, err := decodePubkey(s)
	if err != nil {
		return nil, invalidArg(command, "%s %s", field, err)
	}
	return pub, nil
}

// checkNodeID bounds a node id given by a caller.
func checkNodeID(command, field, id string) error {
	switch {
	case id == "":
		return invalidArg(command, "%s is required: name a member (see cluster.list-members)", field)
	case len(id) > maxNodeIDBytes:
		return invalidArg(command, "%s is %d bytes; node ids are at most %d", field, len(id), maxNodeIDBytes)
	}
	return nil
}

// checkDuration reads an optional duration field: def when unset, else a
// valid duration within [lo, hi].
func checkDuration(command, field string, d *durationpb.Duration, def, lo, hi time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		// The library's message varies its spacing on purpose; ours is fixed.
		return 0, invalidArg(command, "%s is not a valid duration: seconds and nanos must be in range and have the same sign", field)
	}
	v := d.AsDuration()
	if v < lo || v > hi {
		return 0, invalidArg(command, "%s %s is out of range: use %s to %s (or leave it unset for %s)", field, v, lo, hi, def)
	}
	return v, nil
}

// checkTimestamp reads an optional timestamp; zero time when unset.
func checkTimestamp(command, field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalidArg(command, "%s is not a valid timestamp", field)
	}
	return ts.AsTime(), nil
}

// checkKid bounds an optional caller-chosen key id to a safe alphabet: it
// ends up in logs, audit reasons and token headers.
func checkKid(command, kid string) error {
	if len(kid) > maxKidBytes {
		return invalidArg(command, "kid is %d bytes; use at most %d (or leave it empty to derive it)", len(kid), maxKidBytes)
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalidArg(command, "kid may hold only A-Z a-z 0-9 - _ . (or be empty to derive it)")
		}
	}
	return nil
}

// unixMs converts a time to the state's milliseconds; zero stays 0.
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// timestampMs converts the state's milliseconds to a timestamp; 0 is unset.
func timestampMs(ms int64) *timestamppb.Timestamp {
	if ms == 0 {
		return nil
	}
	return timestamppb.New(time.UnixMilli(ms))
}

// clipped bounds a caller-supplied string before it goes into a message.
func clipped(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}
