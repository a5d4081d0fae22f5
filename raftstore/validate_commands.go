package raftstore

import (
	"crypto/ed25519"
	"fmt"
	"unicode"
	"unicode/utf8"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/roomname"
)

// Bounds on identifiers and strings stored in replicated state. They keep
// the state small and every value safe to log and to put in an error.
const (
	maxKidLen          = 128
	maxTokenIDLen      = 128
	maxActorLen        = 256
	maxPathGlobLen     = 1024
	maxIntentPrefixLen = 256
	// minTickIntervalMs: a faster tick would turn one room's schedule into
	// a write storm on the node that runs it.
	minTickIntervalMs = 10
	// defaultIntentPrefix is where a tick reads intents when none is given.
	defaultIntentPrefix = "intent/"
	// maxGraceMs bounds a rotation's grace (ten years): far beyond any
	// sensible grace, and small enough that proposed + grace cannot
	// overflow.
	maxGraceMs = 10 * 365 * 24 * 3600 * 1000
)

// validateNewCommand checks the structure of the command kinds that act on
// keys, rooms, revocations, ticks, topology and queries (kinds 6-19). They all
// depend on time, so they need the leader's ProposedUnixMs: without it the
// FSM would record times of 0 (a revocation "since 1970", a key superseded
// at the epoch). Errors wrap ErrInvalidCommand.
func validateNewCommand(cmd *statev1.Command) error {
	kind := commandKind(cmd)
	if cmd.GetProposedUnixMs() <= 0 {
		return fmt.Errorf("%w: %s: missing proposed time", ErrInvalidCommand, kind)
	}
	var err error
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_RotateKey:
		err = validateRotateKey(k.RotateKey)
	case *statev1.Command_RetireKey:
		err = validateKid(k.RetireKey.GetKid())
	case *statev1.Command_PutRoomKey:
		err = firstErr(validateRoom(k.PutRoomKey.GetRoom()), validateNewRoomKey(k.PutRoomKey.GetKey()))
	case *statev1.Command_RotateRoomKey:
		err = firstErr(validateRoom(k.RotateRoomKey.GetRoom()), validateNewRoomKey(k.RotateRoomKey.GetNewKey()),
			validateGrace(k.RotateRoomKey.GetGraceMs()))
	case *statev1.Command_RetireRoomKey:
		err = firstErr(validateRoom(k.RetireRoomKey.GetRoom()), validateKid(k.RetireRoomKey.GetKid()))
	case *statev1.Command_SetRoomLock:
		err = firstErr(validateRoom(k.SetRoomLock.GetRoom()), validateLockMode(k.SetRoomLock.GetMode()))
	case *statev1.Command_SetPolicy:
		err = firstErr(validateRoom(k.SetPolicy.GetRoom()), validatePolicyEntry(k.SetPolicy.GetEntry()))
	case *statev1.Command_Revoke:
		err = validateRevocation(k.Revoke.GetRevocation())
	case *statev1.Command_PutTick:
		err = validateTick(k.PutTick.GetTick())
	case *statev1.Command_DeleteTick:
		err = validateRoom(k.DeleteTick.GetRoom())
	case *statev1.Command_PlaceRoom:
		err = validateRoom(k.PlaceRoom.GetRoom())
		for _, id := range k.PlaceRoom.GetNodeIds() {
			if err == nil {
				if verr := validateNodeID(id); verr != nil {
					err = fmt.Errorf("node id: %w", verr)
				}
			}
		}
	case *statev1.Command_SetDrain:
		err = validateNodeID(k.SetDrain.GetNodeId())
	case *statev1.Command_EvictPeer:
		err = firstErr(validateRoom(k.EvictPeer.GetRoom()), validatePeer(k.EvictPeer.GetPeerPubkey()))
	case *statev1.Command_PutQuery:
		err = validatePutQuery(k.PutQuery)
	default:
		return fmt.Errorf("%w: %s: not a time-dependent command", ErrInvalidCommand, kind)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidCommand, kind, err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clipq quotes a caller-supplied string for an error, bounded: commands
// may carry up to a megabyte of it.
func clipq(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

func validateRoom(name string) error {
	if !roomname.Valid(name) {
		return fmt.Errorf("room %s: %s", clipq(name), roomname.Help)
	}
	return nil
}

// validateKid accepts 1-128 printable non-space characters: kids come
// from operators (set-room-key) and end up in logs and token headers.
func validateKid(kid string) error {
	return validateLabel("kid", kid, maxKidLen, false)
}

// validateLabel checks a printable, bounded identifier; spaces are allowed
// only where asked (actors are names).
func validateLabel(what, s string, maxLen int, spaces bool) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%s longer than %d bytes", what, maxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %s is not UTF-8", what, clipq(s))
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || (!spaces && unicode.IsSpace(r)) {
			return fmt.Errorf("%s %s contains space or control characters", what, clipq(s))
		}
	}
	return nil
}

func validateGrace(ms int64) error {
	if ms < 0 || ms > maxGraceMs {
		return fmt.Errorf("grace %d ms outside 0..%d", ms, int64(maxGraceMs))
	}
	return nil
}

func validatePeer(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("peer public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return nil
}

// validateRotateKey: the new key must be a complete keyring key that can
// sign (it carries its private seed, plain or sealed, or no node could
// mint with it) and
// must start its life PREPUBLISHED or ACTIVE; the FSM, not the proposer,
// decides when it is superseded or retired.
func validateRotateKey(rk *statev1.RotateKey) error {
	k := rk.GetNewKey()
	if err := validateKey(k); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	if len(k.GetPrivateSeed()) == 0 && len(k.GetSealedSeed()) == 0 {
		return fmt.Errorf("new key %s has no private seed", clipq(k.GetKid()))
	}
	if err := keyring.CheckTransition(statev1.KeyState_KEY_STATE_UNSPECIFIED, k.GetState()); err != nil {
		return fmt.Errorf("new key %s: %w", clipq(k.GetKid()), err)
	}
	if k.GetSupersededUnixMs() != 0 || k.GetRetireAfterUnixMs() != 0 {
		return fmt.Errorf("new key %s must not carry superseded or retire_after times", clipq(k.GetKid()))
	}
	if err := validateKid(k.GetKid()); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	return validateGrace(rk.GetGraceMs())
}

// validateNewRoomKey checks a room key as proposed: a 32-byte public key
// and, when given, a well-formed kid (empty: the FSM derives one).
func validateNewRoomKey(k *statev1.RoomKey) error {
	if k == nil {
		return fmt.Errorf("missing room key")
	}
	if len(k.GetPublicKey()) != ed25519.PublicKeySize {
		return fmt.Errorf("room key public key is %d bytes, want %d", len(k.GetPublicKey()), ed25519.PublicKeySize)
	}
	if k.GetKid() != "" {
		if err := validateKid(k.GetKid()); err != nil {
			return fmt.Errorf("room key: %w", err)
		}
	}
	return nil
}

func validateLockMode(m statev1.LockMode) error {
	switch m {
	case statev1.LockMode_LOCK_MODE_OPEN, statev1.LockMode_LOCK_MODE_OWN_KEYS, statev1.LockMode_LOCK_MODE_CLUSTER:
		return nil
	default:
		return fmt.Errorf("invalid lock mode %d", int32(m))
	}
}

// validatePolicyEntry checks an entry's rules: every rule names a path
// glob and every author key is a 32-byte Ed25519 public key.
func validatePolicyEntry(e *statev1.PolicyEntry) error {
	if e == nil {
		return fmt.Errorf("missing policy entry")
	}
	for i, r := range e.GetRules() {
		if r.GetPathGlob() == "" {
			return fmt.Errorf("rule %d: empty path glob", i)
		}
		if len(r.GetPathGlob()) > maxPathGlobLen {
			return fmt.Errorf("rule %d: path glob longer than %d bytes", i, maxPathGlobLen)
		}
		if !utf8.ValidString(r.GetPathGlob()) {
			return fmt.Errorf("rule %d: path glob is not UTF-8", i)
		}
		for j, w := range r.GetCanWrite() {
			if len(w) != ed25519.PublicKeySize {
				return fmt.Errorf("rule %d: can_write[%d] is %d bytes, want %d", i, j, len(w), ed25519.PublicKeySize)
			}
		}
	}
	return nil
}

// validateRevocation: exactly one target, either a token id or a room and
// a 32-byte peer key.
func validateRevocation(r *statev1.Revocation) error {
	if r == nil {
		return fmt.Errorf("missing revocation")
	}
	byToken := r.GetTokenId() != ""
	byPeer := r.GetRoom() != "" || len(r.GetPeerPubkey()) != 0
	switch {
	case byToken && byPeer:
		return fmt.Errorf("revocation sets both token_id and room/peer_pubkey; set exactly one")
	case byToken:
		if err := validateLabel("token id", r.GetTokenId(), maxTokenIDLen, false); err != nil {
			return err
		}
	case byPeer:
		if err := firstErr(validateRoom(r.GetRoom()), validatePeer(r.GetPeerPubkey())); err != nil {
			return err
		}
	default:
		return fmt.Errorf("revocation sets neither token_id nor room and peer_pubkey")
	}
	if r.GetUntilUnixMs() < 0 {
		return fmt.Errorf("negative until time")
	}
	if r.GetActor() != "" {
		if err := validateLabel("actor", r.GetActor(), maxActorLen, true); err != nil {
			return err
		}
	}
	return nil
}

func validateTick(t *statev1.TickSchedule) error {
	if t == nil {
		return fmt.Errorf("missing tick")
	}
	if err := validateRoom(t.GetRoom()); err != nil {
		return err
	}
	if t.GetIntervalMs() < minTickIntervalMs {
		return fmt.Errorf("interval %d ms is below the minimum of %d ms", t.GetIntervalMs(), minTickIntervalMs)
	}
	if p := t.GetIntentPrefix(); p != "" {
		if len(p) > maxIntentPrefixLen {
			return fmt.Errorf("intent prefix longer than %d bytes", maxIntentPrefixLen)
		}
		if !utf8.ValidString(p) {
			return fmt.Errorf("intent prefix is not UTF-8")
		}
	}
	return nil
}
