package keyring

import (
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// stateRank orders the key states along their only direction of travel.
func stateRank(s statev1.KeyState) int {
	switch s {
	case statev1.KeyState_KEY_STATE_PREPUBLISHED:
		return 1
	case statev1.KeyState_KEY_STATE_ACTIVE:
		return 2
	case statev1.KeyState_KEY_STATE_VERIFY_ONLY:
		return 3
	case statev1.KeyState_KEY_STATE_RETIRED:
		return 4
	default:
		return 0
	}
}

// CheckTransition reports whether a key may move from one state to
// another. Keys only move forward (prepublished → active → verify-only →
// retired, skipping allowed, staying put allowed): moving back would let a
// retired key, possibly retired because it leaked, verify or sign again.
// A new key (from UNSPECIFIED) must start PREPUBLISHED or ACTIVE, so a
// key is never introduced already past the point where it could sign.
func CheckTransition(from, to statev1.KeyState) error {
	rt := stateRank(to)
	if rt == 0 {
		return fmt.Errorf("keyring: invalid target state %s", StateName(to))
	}
	if from == statev1.KeyState_KEY_STATE_UNSPECIFIED {
		if rt > stateRank(statev1.KeyState_KEY_STATE_ACTIVE) {
			return fmt.Errorf("keyring: a new key cannot start %s", StateName(to))
		}
		return nil
	}
	rf := stateRank(from)
	if rf == 0 {
		return fmt.Errorf("keyring: invalid current state %s", StateName(from))
	}
	if rt < rf {
		return fmt.Errorf("keyring: a key cannot go back from %s to %s", StateName(from), StateName(to))
	}
	return nil
}
