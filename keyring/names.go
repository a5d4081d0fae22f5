package keyring

import (
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Purpose and state names as the SPEC, CLI flags and admin output spell
// them. Kept in one table each so parse and print cannot drift apart.
var (
	purposeNames = []struct {
		p     statev1.KeyPurpose
		name  string
		short string // kid prefix
	}{
		{statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, "room-token", "rt"},
		{statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, "operator", "op"},
	}
	stateNames = []struct {
		s    statev1.KeyState
		name string
	}{
		{statev1.KeyState_KEY_STATE_PREPUBLISHED, "prepublished"},
		{statev1.KeyState_KEY_STATE_ACTIVE, "active"},
		{statev1.KeyState_KEY_STATE_VERIFY_ONLY, "verify-only"},
		{statev1.KeyState_KEY_STATE_RETIRED, "retired"},
	}
)

// PurposeName returns "room-token" or "operator"; other values print as
// "unspecified" or "purpose(N)" so logs never show an empty field.
func PurposeName(p statev1.KeyPurpose) string {
	for _, e := range purposeNames {
		if e.p == p {
			return e.name
		}
	}
	if p == statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED {
		return "unspecified"
	}
	return fmt.Sprintf("purpose(%d)", int32(p))
}

// ParsePurpose is the inverse of PurposeName for the two real purposes.
func ParsePurpose(s string) (statev1.KeyPurpose, error) {
	for _, e := range purposeNames {
		if e.name == s {
			return e.p, nil
		}
	}
	return statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED, fmt.Errorf("keyring: unknown key purpose %q (want room-token or operator)", s)
}

// StateName returns "prepublished", "active", "verify-only" or "retired";
// other values print as "unspecified" or "state(N)".
func StateName(s statev1.KeyState) string {
	for _, e := range stateNames {
		if e.s == s {
			return e.name
		}
	}
	if s == statev1.KeyState_KEY_STATE_UNSPECIFIED {
		return "unspecified"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// ParseState is the inverse of StateName for the four real states.
func ParseState(s string) (statev1.KeyState, error) {
	for _, e := range stateNames {
		if e.name == s {
			return e.s, nil
		}
	}
	return statev1.KeyState_KEY_STATE_UNSPECIFIED, fmt.Errorf("keyring: unknown key state %q (want prepublished, active, verify-only or retired)", s)
}

// kidPrefix returns the short purpose used in key ids ("rt", "op").
func kidPrefix(p statev1.KeyPurpose) (string, bool) {
	for _, e := range purposeNames {
		if e.p == p {
			return e.short, true
		}
	}
	return "", false
}
