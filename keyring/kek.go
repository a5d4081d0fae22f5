package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// kekAAD prefixes the kid in the additional data of a sealed seed, so a
// sealed seed moved onto another key (another kid) does not open, and a
// later format can be told apart by its version.
const kekAAD = "nodalmerge-kek-v1\x00"

// kekNonceSize is AES-GCM's standard nonce; random per seal (a KEK seals a
// handful of seeds in its life, far from the 2^32 bound of random nonces).
const kekNonceSize = 12

// SealedSeedSize is the length of a well-formed sealed seed: nonce,
// ciphertext of the 32-byte seed, GCM tag.
const SealedSeedSize = kekNonceSize + ed25519.SeedSize + 16

// KEKIDLen is the length of a kek_id: 16 hex digits.
const KEKIDLen = 16

// ErrSealed: the key that must sign is sealed with a KEK this node does
// not hold (it has none, or another one). The error names the KEK id it
// needs; callers answer FAILED_PRECONDITION rather than an internal error.
var ErrSealed = errors.New("key is sealed")

// KEK is a key-encryption key (--kek-file). With one, key seeds are stored
// sealed wherever they rest (Raft log, WAL, snapshots) and opened only in
// memory when a key signs. It is safe for concurrent use.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// NewKEK makes a KEK from 32 raw bytes. The bytes are not kept beyond the
// cipher's own key schedule.
func NewKEK(raw []byte) (*KEK, error) {
	if len(raw) != KEKSize {
		return nil, fmt.Errorf("keyring: a key-encryption key is %d bytes, got %d", KEKSize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keyring: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: key-encryption key: %w", err)
	}
	sum := sha256.Sum256(raw)
	return &KEK{id: hex.EncodeToString(sum[:KEKIDLen/2]), aead: aead}, nil
}

// ParseKEK reads the text form of a KEK: 64 hex digits, optionally
// followed by one newline (as `nodalmerge kek create` writes it). Errors
// never quote the input: it is a secret.
func ParseKEK(text []byte) (*KEK, error) {
	text = bytes.TrimSuffix(text, []byte("\n"))
	text = bytes.TrimSuffix(text, []byte("\r"))
	if len(text) != 2*KEKSize {
		return nil, fmt.Errorf("keyring: a key-encryption key is %d hex digits (32 random bytes), got %d characters", 2*KEKSize, len(text))
	}
	raw := make([]byte, KEKSize)
	if _, err := hex.Decode(raw, text); err != nil {
		return nil, errors.New("keyring: a key-encryption key is 64 hex digits (32 random bytes); the text is not hex")
	}
	defer clear(raw)
	return NewKEK(raw)
}

// GenerateKEK answers a new random KEK in its text form (64 hex digits and
// a newline), ready to be written to a 0600 file.
func GenerateKEK() ([]byte, error) {
	raw := make([]byte, KEKSize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("keyring: generate key-encryption key: %w", err)
	}
	out := make([]byte, 2*KEKSize+1)
	hex.Encode(out, raw)
	out[2*KEKSize] = '\n'
	return out, nil
}

// ID is the KEK's id: hex of the first 8 bytes of SHA-256 of the key. It
// is not secret; keys sealed with this KEK carry it as kek_id.
func (k *KEK) ID() string { return k.id }

// Seal moves key's private seed into sealed_seed, encrypted with the KEK
// and bound to the kid, and clears private_seed. Call it after the kid is
// final and before the key is proposed. A key that is already sealed is an
// error (it would be sealed twice or with another KEK).
func (k *KEK) Seal(key *statev1.Key) error {
	if len(key.GetSealedSeed()) != 0 || key.GetKekId() != "" {
		return fmt.Errorf("keyring: key %s is already sealed", key.GetKid())
	}
	seed := key.GetPrivateSeed()
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("keyring: key %s has no valid private seed to seal", key.GetKid())
	}
	nonce := make([]byte, kekNonceSize, SealedSeedSize)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("keyring: seal key %s: %w", key.GetKid(), err)
	}
	key.SealedSeed = k.aead.Seal(nonce, nonce, seed, kekAdditionalData(key.GetKid()))
	key.KekId = k.id
	clear(key.PrivateSeed)
	key.PrivateSeed = nil
	return nil
}

// Sealed reports whether key's seed is sealed with a KEK.
func Sealed(key *statev1.Key) bool {
	return len(key.GetSealedSeed()) != 0 || key.GetKekId() != ""
}

// Seed answers key's 32-byte private seed: the plain seed, or the sealed
// one opened with kek. A sealed key and a nil or different KEK is
// ErrSealed, naming the KEK id needed. The answer is a copy the caller
// should clear after use; errors never carry key material.
func Seed(key *statev1.Key, kek *KEK) ([]byte, error) {
	if !Sealed(key) {
		if len(key.GetPrivateSeed()) != ed25519.SeedSize {
			return nil, fmt.Errorf("keyring: signing key %s has no valid private seed", key.GetKid())
		}
		return bytes.Clone(key.GetPrivateSeed()), nil
	}
	if kek == nil || kek.id != key.GetKekId() {
		return nil, fmt.Errorf("keyring: key %s is sealed with KEK %s; start with --kek-file holding that key: %w",
			key.GetKid(), clip(key.GetKekId()), ErrSealed)
	}
	sealed := key.GetSealedSeed()
	if len(key.GetPrivateSeed()) != 0 || len(sealed) != SealedSeedSize {
		return nil, fmt.Errorf("keyring: key %s has a malformed sealed seed", key.GetKid())
	}
	seed, err := kek.aead.Open(nil, sealed[:kekNonceSize], sealed[kekNonceSize:], kekAdditionalData(key.GetKid()))
	if err != nil {
		// Same kek id, so the KEK is right: the record was altered.
		return nil, fmt.Errorf("keyring: key %s: sealed seed does not open with KEK %s (corrupted or moved from another key)", key.GetKid(), kek.id)
	}
	return seed, nil
}

func kekAdditionalData(kid string) []byte {
	return append([]byte(kekAAD), kid...)
}
