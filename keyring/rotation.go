package keyring

import (
	"slices"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Newest answers the newest key of purpose that signs now or will sign by
// time alone (SignsNowOrLater), ordered as Signer orders candidates; nil
// when there is none. Automatic rotation measures a purpose's age by it:
// a prepublished successor already counts, so a rotation that is waiting
// for its activation is not proposed again.
func Newest(keys []*statev1.Key, purpose statev1.KeyPurpose, now time.Time) *statev1.Key {
	var best *statev1.Key
	for _, k := range keys {
		if k.GetPurpose() != purpose || !SignsNowOrLater(k, now) {
			continue
		}
		if best == nil || newer(k, best) {
			best = k
		}
	}
	return best
}

// SupersededBy answers, sorted, the kids of the keys that the rotation to
// newKey superseded: keys of its purpose whose superseded instant is
// newKey's activation (the state machine stamps exactly that instant on
// every key the rotation replaces). Read from the state after the
// rotation applied, it names what the rotation really did.
func SupersededBy(keys []*statev1.Key, newKey *statev1.Key) []string {
	act := newKey.GetActivateUnixMs()
	var out []string
	for _, k := range keys {
		if k.GetPurpose() == newKey.GetPurpose() && k.GetKid() != newKey.GetKid() && act != 0 && k.GetSupersededUnixMs() == act {
			out = append(out, k.GetKid())
		}
	}
	slices.Sort(out)
	return out
}
