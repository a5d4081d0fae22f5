package raftstore

import (
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// hasKey reports whether the keyring holds kid.
func (x *fx) hasKey(kid string) bool {
	for _, k := range x.f.getKeys() {
		if k.GetKid() == kid {
			return true
		}
	}
	return false
}

// TestFSMRotationDropsLongRetiredKeys: a rotation drops the keys of its
// purpose retired RetiredKeyRetention or more before it, and only those:
// a key retired more recently, one still in its grace and the keys of the
// other purpose stay.
func TestFSMRotationDropsLongRetiredKeys(t *testing.T) {
	x := newFx(t)
	retention := RetiredKeyRetention.Milliseconds()
	x.ok(t0, rotateKeyCmd(newKey(t, "op-2", opPurpose), 0)) // op-1 retired at t0
	x.ok(t0+1000, rotateKeyCmd(newKey(t, "op-3", opPurpose), 0))
	x.ok(t0, rotateKeyCmd(newKey(t, "rt-2", rtPurpose), 0)) // rt-1 retired at t0 too
	if !x.hasKey("op-1") || !x.hasKey("op-2") {
		t.Fatal("a rotation within the retention dropped a key")
	}

	// op-1 (retired at t0) is past the retention, op-2 (t0+1000) not yet;
	// op-3 goes into a long grace; rt-1, as old as op-1, is of the other
	// purpose, which this rotation does not touch.
	x.ok(t0+retention+500, rotateKeyCmd(newKey(t, "op-4", opPurpose), int64(48*time.Hour/time.Millisecond)))
	if x.hasKey("op-1") {
		t.Fatal("op-1, retired longer than the retention, was kept")
	}
	for _, kid := range []string{"op-2", "op-3", "op-4", "rt-1", "rt-2"} {
		if !x.hasKey(kid) {
			t.Fatalf("%s was dropped", kid)
		}
	}
	x.ok(t0+retention+1000, rotateKeyCmd(newKey(t, "op-5", opPurpose), 0))
	if x.hasKey("op-2") || !x.hasKey("op-3") {
		t.Fatalf("after the retention of op-2: op-2 kept %v, op-3 (in its grace) kept %v", x.hasKey("op-2"), x.hasKey("op-3"))
	}
	if k := x.key("op-3"); k.GetState() == statev1.KeyState_KEY_STATE_UNSPECIFIED {
		t.Fatal("op-3 lost its state")
	}
}
