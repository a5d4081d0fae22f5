package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Sentinel errors. Callers map them to stable deny reasons ("unknown key
// id") and retryable conditions; both messages are free of key material.
var (
	// ErrUnknownKey: no key with that kid verifies for that purpose now
	// (absent, wrong purpose, retired, past its grace, or malformed).
	ErrUnknownKey = errors.New("unknown key id")
	// ErrNoSigningKey: no key of that purpose may sign now.
	ErrNoSigningKey = errors.New("no active signing key")
)

// kidHexLen is how many hex digits of SHA-256(public key) name a key: 48
// bits is plenty to keep a cluster's handful of keys apart, short enough
// to read in logs, and derived from the key so a kid cannot be reused for
// different key material by accident.
const kidHexLen = 12

// Generate makes a new ACTIVE Ed25519 key for purpose, with kid
// "<rt|op>-<12 hex of sha256(pub)>". To prepublish instead, set State to
// PREPUBLISHED and ActivateUnixMs to the planned activation.
func Generate(purpose statev1.KeyPurpose, now time.Time) (*statev1.Key, error) {
	if _, ok := kidPrefix(purpose); !ok {
		return nil, fmt.Errorf("keyring: generate: unsupported purpose %s", PurposeName(purpose))
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keyring: generate %s key: %w", PurposeName(purpose), err)
	}
	ms := now.UnixMilli()
	return &statev1.Key{
		Kid:            KeyID(purpose, pub),
		Purpose:        purpose,
		State:          statev1.KeyState_KEY_STATE_ACTIVE,
		PublicKey:      pub,
		PrivateSeed:    priv.Seed(),
		CreatedUnixMs:  ms,
		ActivateUnixMs: ms,
	}, nil
}

// KeyID derives the kid of a public key for purpose (see Generate). It
// returns "" for an unsupported purpose.
func KeyID(purpose statev1.KeyPurpose, pub ed25519.PublicKey) string {
	prefix, ok := kidPrefix(purpose)
	if !ok {
		return ""
	}
	sum := sha256.Sum256(pub)
	return prefix + "-" + hex.EncodeToString(sum[:])[:kidHexLen]
}

// activation is when k started (or starts) signing, for picking the newest.
func activation(k *statev1.Key) int64 {
	if a := k.GetActivateUnixMs(); a != 0 {
		return a
	}
	return k.GetCreatedUnixMs()
}

// newer orders signing candidates: later activation, then later creation,
// then the greater kid, so every node picks the same key from the same
// state even when two keys were activated in the same millisecond.
func newer(a, b *statev1.Key) bool {
	if x, y := activation(a), activation(b); x != y {
		return x > y
	}
	if x, y := a.GetCreatedUnixMs(), b.GetCreatedUnixMs(); x != y {
		return x > y
	}
	return a.GetKid() > b.GetKid()
}

// Signer returns the key that signs for purpose at now: the newest key
// whose effective State at now is ACTIVE (so a rotated-in key takes over,
// and the key it supersedes stops, at the same instant). The
// returned private key is a fresh copy derived from the seed; a seed that
// does not reproduce the stored public key is an error rather than a
// silent signature nobody can verify. A sealed signing key is ErrSealed:
// use SignerWith and the node's KEK.
func Signer(keys []*statev1.Key, purpose statev1.KeyPurpose, now time.Time) (string, ed25519.PrivateKey, error) {
	return SignerWith(keys, purpose, now, nil)
}

// SignerWith is Signer for a node that may hold a key-encryption key: a
// sealed signing key is opened with kek (nil: this node has none). Which
// key signs never depends on kek, so a node without the right KEK fails
// with ErrSealed naming the KEK needed instead of signing with another key.
func SignerWith(keys []*statev1.Key, purpose statev1.KeyPurpose, now time.Time, kek *KEK) (string, ed25519.PrivateKey, error) {
	var best *statev1.Key
	for _, k := range keys {
		if k.GetPurpose() != purpose || State(k, now) != statev1.KeyState_KEY_STATE_ACTIVE {
			continue
		}
		if best == nil || newer(k, best) {
			best = k
		}
	}
	if best == nil {
		return "", nil, fmt.Errorf("keyring: %s: %w", PurposeName(purpose), ErrNoSigningKey)
	}
	seed, err := Seed(best, kek)
	if err != nil {
		return "", nil, err
	}
	defer clear(seed)
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), best.GetPublicKey()) {
		clear(priv)
		return "", nil, fmt.Errorf("keyring: signing key %s: private seed does not match public key", best.GetKid())
	}
	return best.GetKid(), priv, nil
}

// VerifyKey returns the public key with kid if it may verify signatures
// for purpose at now: its effective State is PREPUBLISHED, ACTIVE or
// VERIFY_ONLY (which lasts until retire_after). Anything else (no such
// kid, another purpose, RETIRED, past grace, malformed) is ErrUnknownKey:
// a verifier learns nothing from the difference, and fails closed.
func VerifyKey(keys []*statev1.Key, purpose statev1.KeyPurpose, kid string, now time.Time) (ed25519.PublicKey, error) {
	for _, k := range keys {
		if k.GetKid() != kid {
			continue
		}
		if k.GetPurpose() != purpose || !Verifies(State(k, now)) {
			break
		}
		if len(k.GetPublicKey()) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("keyring: key %s has a malformed public key: %w", kid, ErrUnknownKey)
		}
		return bytes.Clone(k.GetPublicKey()), nil
	}
	return nil, fmt.Errorf("keyring: %s key %q: %w", PurposeName(purpose), clip(kid), ErrUnknownKey)
}

// clip bounds a caller-supplied kid (it comes from untrusted token headers)
// before it is put into an error that may be logged.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
