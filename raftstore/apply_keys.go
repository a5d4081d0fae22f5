package raftstore

import (
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// Cluster keyring commands. Each checks everything first and changes
// state only when it accepts, so a rejected command leaves no trace.

func (s *state) applyInitCluster(c *statev1.InitCluster) error {
	if s.clusterID != "" {
		return rejectf("cluster already initialised as %q", s.clusterID)
	}
	s.clusterID = c.GetClusterId()
	for _, key := range c.GetKeys() {
		s.keys[key.GetKid()] = key
	}
	return nil
}

// applyRotateKey adds a new key and schedules the hand-over: every key of
// the purpose that can still sign and has not been superseded yet stops
// signing the instant the new key activates and verifies for grace_ms
// more. The instants are stored, not acted on: keyring.State reads them,
// so the switch happens on every node at the same time without a timer.
func (s *state) applyRotateKey(c *statev1.RotateKey, now int64) error {
	k := c.GetNewKey()
	if _, dup := s.keys[k.GetKid()]; dup {
		return rejectf("key %q already exists; a rotation needs a new key", k.GetKid())
	}
	// Activation is never in the past: that would retroactively supersede
	// keys that tokens were signed with a moment ago.
	act := max(k.GetActivateUnixMs(), now)
	k.ActivateUnixMs = act
	if k.GetCreatedUnixMs() == 0 {
		k.CreatedUnixMs = now
	}
	k.State = statev1.KeyState_KEY_STATE_ACTIVE
	if act > now {
		k.State = statev1.KeyState_KEY_STATE_PREPUBLISHED
	}
	retireAt := act + c.GetGraceMs()
	nowT := time.UnixMilli(now)
	for _, old := range s.keys {
		if old.GetPurpose() != k.GetPurpose() || old.GetSupersededUnixMs() != 0 {
			continue
		}
		switch keyring.State(old, nowT) {
		case statev1.KeyState_KEY_STATE_PREPUBLISHED, statev1.KeyState_KEY_STATE_ACTIVE:
		default:
			continue
		}
		old.SupersededUnixMs = act
		// Never extend a retirement that was already scheduled earlier.
		if ra := old.GetRetireAfterUnixMs(); ra == 0 || retireAt < ra {
			old.RetireAfterUnixMs = retireAt
		}
	}
	s.keys[k.GetKid()] = k
	s.dropRetiredKeys(k.GetPurpose(), now)
	return nil
}

// RetiredKeyRetention is how long a retired keyring key is kept after it
// stopped verifying. Rotations add keys forever (automatic rotation adds
// one per purpose per interval), so each rotation drops the keys of its
// purpose retired longer ago than this: the keyring, its snapshots and
// every Keys() copy stay bounded. Within the retention a token naming the
// key is refused as revoked; after it, as an unknown key id.
const RetiredKeyRetention = 30 * 24 * time.Hour

// dropRetiredKeys removes the keys of purpose whose retire_after is
// RetiredKeyRetention or more before now. It runs inside an apply, on the
// command's proposal time, so every replica drops the same keys.
func (s *state) dropRetiredKeys(purpose statev1.KeyPurpose, now int64) {
	cutoff := now - RetiredKeyRetention.Milliseconds()
	for kid, k := range s.keys {
		if k.GetPurpose() == purpose && k.GetRetireAfterUnixMs() > 0 && k.GetRetireAfterUnixMs() <= cutoff {
			delete(s.keys, kid)
		}
	}
}

// applyRetireKey retires a key at once. It refuses to retire the last key
// of a purpose that can sign now or later (the cluster would be unable to
// mint operator or room tokens: rotate first); a key that could not sign
// anyway (verify-only, perhaps leaked) may always be retired.
func (s *state) applyRetireKey(c *statev1.RetireKey, now int64) error {
	k, ok := s.keys[c.GetKid()]
	if !ok {
		return rejectf("no key %q in the keyring", c.GetKid())
	}
	nowT := time.UnixMilli(now)
	if keyring.State(k, nowT) == statev1.KeyState_KEY_STATE_RETIRED {
		// Already retired (explicitly or by its grace ending): converge.
		k.State = statev1.KeyState_KEY_STATE_RETIRED
		return nil
	}
	if keyring.SignsNowOrLater(k, nowT) {
		other := false
		for _, o := range s.keys {
			if o != k && o.GetPurpose() == k.GetPurpose() && keyring.SignsNowOrLater(o, nowT) {
				other = true
				break
			}
		}
		if !other {
			return rejectf("key %q is the only %s key that can sign; rotate in a new key first",
				k.GetKid(), keyring.PurposeName(k.GetPurpose()))
		}
	}
	k.State = statev1.KeyState_KEY_STATE_RETIRED
	k.RetireAfterUnixMs = now
	return nil
}
