package keyring

import (
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// State is the effective state of a keyring key at now. The replicated
// record stores the state it was given plus the instants at which it
// changes (activate, superseded, retire_after); the leader stamps those
// instants into the command, so every node computes the same answer at the
// same time and no timer ever has to propose a transition.
//
// In order of precedence:
//   - RETIRED when stored RETIRED, or retire_after is set and has passed;
//   - VERIFY_ONLY when stored VERIFY_ONLY, or superseded is set and has
//     passed (a stored VERIFY_ONLY key stays so until retire_after);
//   - PREPUBLISHED when activate is in the future, or when stored
//     PREPUBLISHED with no activation time (it waits for an explicit
//     promotion: signing with a key some verifiers may not have seen yet is
//     what prepublishing prevents);
//   - ACTIVE otherwise.
//
// An unknown stored state (UNSPECIFIED or out of range) stays UNSPECIFIED:
// such a key neither signs nor verifies.
func State(k *statev1.Key, now time.Time) statev1.KeyState {
	stored := k.GetState()
	if stateRank(stored) == 0 {
		return statev1.KeyState_KEY_STATE_UNSPECIFIED
	}
	ms := now.UnixMilli()
	if st, done := retiredOrSuperseded(stored, k.GetRetireAfterUnixMs(), k.GetSupersededUnixMs(), ms); done {
		return st
	}
	act := k.GetActivateUnixMs()
	if act > ms || (stored == statev1.KeyState_KEY_STATE_PREPUBLISHED && act == 0) {
		return statev1.KeyState_KEY_STATE_PREPUBLISHED
	}
	return statev1.KeyState_KEY_STATE_ACTIVE
}

// RoomKeyState is State for a room's own key. Room keys have no scheduled
// activation (they are active once added), so after the retirement and
// supersession rules the stored state stands.
func RoomKeyState(k *statev1.RoomKey, now time.Time) statev1.KeyState {
	stored := k.GetState()
	if stateRank(stored) == 0 {
		return statev1.KeyState_KEY_STATE_UNSPECIFIED
	}
	if st, done := retiredOrSuperseded(stored, k.GetRetireAfterUnixMs(), k.GetSupersededUnixMs(), now.UnixMilli()); done {
		return st
	}
	return stored
}

// retiredOrSuperseded applies the two time rules shared by cluster and room
// keys; done is false when neither applies.
func retiredOrSuperseded(stored statev1.KeyState, retireAfter, superseded, nowMs int64) (statev1.KeyState, bool) {
	switch {
	case stored == statev1.KeyState_KEY_STATE_RETIRED || (retireAfter > 0 && nowMs >= retireAfter):
		return statev1.KeyState_KEY_STATE_RETIRED, true
	case stored == statev1.KeyState_KEY_STATE_VERIFY_ONLY || (superseded > 0 && nowMs >= superseded):
		return statev1.KeyState_KEY_STATE_VERIFY_ONLY, true
	default:
		return stored, false
	}
}

// Verifies reports whether a key in effective state s verifies signatures:
// PREPUBLISHED, ACTIVE and VERIFY_ONLY do; RETIRED and UNSPECIFIED do not.
func Verifies(s statev1.KeyState) bool {
	switch s {
	case statev1.KeyState_KEY_STATE_PREPUBLISHED, statev1.KeyState_KEY_STATE_ACTIVE, statev1.KeyState_KEY_STATE_VERIFY_ONLY:
		return true
	default:
		return false
	}
}

// SignsNowOrLater reports whether k is ACTIVE at now, or will become ACTIVE
// by time alone (a scheduled activation that is not preempted by its own
// supersession or retirement). The FSM uses it to refuse retiring the last
// key that could ever sign for a purpose.
func SignsNowOrLater(k *statev1.Key, now time.Time) bool {
	switch State(k, now) {
	case statev1.KeyState_KEY_STATE_ACTIVE:
		return true
	case statev1.KeyState_KEY_STATE_PREPUBLISHED:
		act := k.GetActivateUnixMs()
		return act > 0 && State(k, time.UnixMilli(act)) == statev1.KeyState_KEY_STATE_ACTIVE
	default:
		return false
	}
}
