package raftstore

import (
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// validateSealedSeed checks the shape of a sealed seed (SPEC ext, --kek-file):
// a key carries its seed either in the clear or sealed, never both (a
// sealed key with a plain copy would defeat the sealing); a sealed seed is
// keyring.SealedSeedSize bytes and names the KEK that sealed it as 16
// lowercase hex digits. Only lengths and ids are reported, never bytes.
func validateSealedSeed(k *statev1.Key) error {
	sealed, kekID := k.GetSealedSeed(), k.GetKekId()
	if len(sealed) == 0 && kekID == "" {
		return nil
	}
	switch {
	case len(k.GetPrivateSeed()) != 0:
		return fmt.Errorf("%w: key %q carries both a plain and a sealed seed", ErrInvalidCommand, k.GetKid())
	case len(sealed) != keyring.SealedSeedSize:
		return fmt.Errorf("%w: key %q: sealed seed is %d bytes, want %d", ErrInvalidCommand, k.GetKid(), len(sealed), keyring.SealedSeedSize)
	case !validKEKID(kekID):
		return fmt.Errorf("%w: key %q: kek_id %s is not %d lowercase hex digits", ErrInvalidCommand, k.GetKid(), clipq(kekID), keyring.KEKIDLen)
	}
	return nil
}

func validKEKID(id string) bool {
	if len(id) != keyring.KEKIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
