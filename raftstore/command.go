package raftstore

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// commandKind names a command for logs and errors. It never includes
// payload fields, so it is safe to log.
func commandKind(cmd *statev1.Command) string {
	switch cmd.GetKind().(type) {
	case *statev1.Command_InitCluster:
		return "init_cluster"
	case *statev1.Command_PutMember:
		return "put_member"
	case *statev1.Command_RemoveMember:
		return "remove_member"
	case *statev1.Command_PutKey:
		return "put_key"
	case *statev1.Command_RotateKey:
		return "rotate_key"
	case *statev1.Command_RetireKey:
		return "retire_key"
	case *statev1.Command_PutRoomKey:
		return "put_room_key"
	case *statev1.Command_RotateRoomKey:
		return "rotate_room_key"
	case *statev1.Command_RetireRoomKey:
		return "retire_room_key"
	case *statev1.Command_SetRoomLock:
		return "set_room_lock"
	case *statev1.Command_SetPolicy:
		return "set_policy"
	case *statev1.Command_Revoke:
		return "revoke"
	case *statev1.Command_PutTick:
		return "put_tick"
	case *statev1.Command_DeleteTick:
		return "delete_tick"
	case *statev1.Command_PlaceRoom:
		return "place_room"
	case *statev1.Command_SetDrain:
		return "set_drain"
	case *statev1.Command_EvictPeer:
		return "evict_peer"
	case *statev1.Command_PutQuery:
		return "put_query"
	default:
		return "unknown"
	}
}

// validateCommand checks the structure of a command, independent of state.
// Store.Apply runs it before proposing, so that malformed commands never
// take a log slot; the FSM runs it again because a log entry is the only
// thing every replica agrees on, and the check must be deterministic.
// Errors wrap ErrInvalidCommand and never contain key material.
func validateCommand(cmd *statev1.Command) error {
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_InitCluster:
		if k.InitCluster.GetClusterId() == "" {
			return fmt.Errorf("%w: init_cluster: empty cluster id", ErrInvalidCommand)
		}
		seen := make(map[string]bool, len(k.InitCluster.GetKeys()))
		for _, key := range k.InitCluster.GetKeys() {
			if err := validateKey(key); err != nil {
				return fmt.Errorf("init_cluster: %w", err)
			}
			if seen[key.GetKid()] {
				return fmt.Errorf("%w: init_cluster: duplicate kid %q", ErrInvalidCommand, key.GetKid())
			}
			seen[key.GetKid()] = true
		}
		return nil
	case *statev1.Command_PutMember:
		if err := validateMember(k.PutMember.GetMember()); err != nil {
			return fmt.Errorf("put_member: %w", err)
		}
		return nil
	case *statev1.Command_RemoveMember:
		if k.RemoveMember.GetNodeId() == "" {
			return fmt.Errorf("%w: remove_member: empty node id", ErrInvalidCommand)
		}
		return nil
	case *statev1.Command_PutKey:
		if err := validateKey(k.PutKey.GetKey()); err != nil {
			return fmt.Errorf("put_key: %w", err)
		}
		return nil
	case nil:
		return fmt.Errorf("%w: no command kind set", ErrInvalidCommand)
	default:
		return validateNewCommand(cmd)
	}
}

func validateMember(m *statev1.Member) error {
	if m == nil {
		return fmt.Errorf("%w: missing member", ErrInvalidCommand)
	}
	if m.GetNodeId() == "" {
		return fmt.Errorf("%w: empty node id", ErrInvalidCommand)
	}
	return nil
}

// validateKey enforces what every reader of the keyring relies on: a kid,
// a purpose and state, a 32-byte Ed25519 public key and, when the private
// half is present in the clear, a seed that really derives that public key
// (a mismatch would make tokens signed by this node fail verification
// everywhere). A sealed seed is checked for shape only: the state machine
// holds no KEK (replicas must decide alike whatever KEK their node has).
func validateKey(k *statev1.Key) error {
	if k == nil {
		return fmt.Errorf("%w: missing key", ErrInvalidCommand)
	}
	if k.GetKid() == "" {
		return fmt.Errorf("%w: key with empty kid", ErrInvalidCommand)
	}
	if k.GetPurpose() == statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED {
		return fmt.Errorf("%w: key %q: purpose unspecified", ErrInvalidCommand, k.GetKid())
	}
	if k.GetState() == statev1.KeyState_KEY_STATE_UNSPECIFIED {
		return fmt.Errorf("%w: key %q: state unspecified", ErrInvalidCommand, k.GetKid())
	}
	if len(k.GetPublicKey()) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: key %q: public key is %d bytes, want %d",
			ErrInvalidCommand, k.GetKid(), len(k.GetPublicKey()), ed25519.PublicKeySize)
	}
	if err := validateSealedSeed(k); err != nil {
		return err
	}
	if seed := k.GetPrivateSeed(); len(seed) != 0 {
		if len(seed) != ed25519.SeedSize {
			// Only the length is reported, never the bytes.
			return fmt.Errorf("%w: key %q: private seed is %d bytes, want %d",
				ErrInvalidCommand, k.GetKid(), len(seed), ed25519.SeedSize)
		}
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, k.GetPublicKey()) {
			return fmt.Errorf("%w: key %q: private seed does not match public key", ErrInvalidCommand, k.GetKid())
		}
	}
	return nil
}
