package node

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// Pacing of automatic rotation. The rotator sleeps until the next rotation
// is due, but wakes at least every autoRotateRecheck to notice rotations
// operators made meanwhile (they postpone the next one); after a failed
// attempt it retries within autoRotateRetry.
const (
	autoRotateRecheck = time.Minute
	autoRotateRetry   = 5 * time.Second
	// autoRotateTimeout bounds one rotation (one Raft apply).
	autoRotateTimeout = 30 * time.Second
)

// rotatedPurposes are the keyring purposes rotated automatically.
var rotatedPurposes = [...]statev1.KeyPurpose{statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR}

// autoRotator rotates the cluster keyring on a schedule
// (--key-rotation-interval). Only the leader rotates: every node runs the
// loop, but it acts only while its store leads, and leadership changes wake
// it, so the duty moves with leadership like the tick runner does. It
// proposes through the control plane's keys.rotate handler
// (controlplane.Server.RotateKeyAsNode), so validation, sealing, the Raft
// command, the audit event (actor node:<id>, transport internal) and the
// rotation metric are those of an operator's rotation.
//
// A purpose is due when its newest key that signs now or later
// (keyring.Newest) was created interval ago or more. A prepublished
// successor counts as newest, so a rotation waiting for its activation is
// never proposed twice; and each key signs for about one interval.
type autoRotator struct {
	store      *raftstore.Store
	rotate     func(context.Context, *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error)
	interval   time.Duration
	prepublish time.Duration
	grace      time.Duration
	now        func() time.Time
	log        *slog.Logger

	wake chan struct{} // leadership changed; capacity 1, never blocks
	done chan struct{} // closed when run returns
}

// leaderChanged wakes the loop; called from raftstore's leader watcher.
func (a *autoRotator) leaderChanged() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run loops until ctx ends.
func (a *autoRotator) run(ctx context.Context) {
	defer close(a.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := time.Duration(-1) // not leader: sleep until leadership changes
		if a.store.IsLeader() {
			wait = a.pass(ctx)
		}
		timer.Stop()
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-fire:
		}
	}
}

// pass rotates every purpose that is due and answers how long to sleep
// before the next check.
func (a *autoRotator) pass(ctx context.Context) time.Duration {
	if a.store.ClusterID() == "" {
		return autoRotateRetry // not initialised yet: nothing to rotate
	}
	next := autoRotateRecheck
	for _, p := range rotatedPurposes {
		now := a.now()
		due := a.dueAt(a.store.Keys(), p, now)
		if wait := due.Sub(now); wait > 0 {
			next = min(next, wait)
			continue
		}
		if err := a.rotateOne(ctx, p); err != nil {
			next = min(next, autoRotateRetry, a.interval)
			continue
		}
		next = min(next, a.interval)
	}
	return next
}

// dueAt answers when purpose p is next due: interval after its newest
// signing key was created; a purpose without one is due now.
func (a *autoRotator) dueAt(keys []*statev1.Key, p statev1.KeyPurpose, now time.Time) time.Time {
	newest := keyring.Newest(keys, p, now)
	if newest == nil {
		return now
	}
	return time.UnixMilli(newest.GetCreatedUnixMs()).Add(a.interval)
}

func (a *autoRotator) rotateOne(ctx context.Context, p statev1.KeyPurpose) error {
	ctx, cancel := context.WithTimeout(ctx, autoRotateTimeout)
	defer cancel()
	resp, err := a.rotate(ctx, &adminv1.RotateKeyRequest{
		Purpose:    keyring.PurposeName(p),
		Prepublish: durationpb.New(a.prepublish),
		Grace:      durationpb.New(a.grace),
	})
	if err != nil {
		if ctx.Err() == nil || !a.store.IsLeader() {
			a.log.Warn("automatic key rotation failed; will retry", "purpose", keyring.PurposeName(p), "error", err)
		}
		return err
	}
	a.log.Info("key rotated automatically", "purpose", keyring.PurposeName(p), "kid", resp.GetKid(),
		"activates_at", resp.GetActivatesAt().AsTime(), "raft_index", resp.GetRaftIndex())
	return nil
}

// startAutoRotate starts the rotator when --key-rotation-interval is set.
// It needs the admin server (the keys.rotate handler), so it starts after
// it; a leadership change before then is caught by the first pass.
func (n *Node) startAutoRotate() {
	if n.cfg.KeyRotationInterval <= 0 {
		return
	}
	a := &autoRotator{
		store:      n.store,
		rotate:     n.admin.RotateKeyAsNode,
		interval:   n.cfg.KeyRotationInterval,
		prepublish: n.cfg.KeyRotationPrepublish,
		grace:      n.cfg.KeyRotationGrace,
		now:        n.cfg.Now,
		log:        n.cfg.Logger.With("component", "autorotate"),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopRotate = func() {
		cancel()
		<-a.done
	}
	n.rotator.Store(a)
	go a.run(ctx)
}

// stopAutoRotate stops the rotator and waits for it; before the admin
// server and the store stop, so no rotation is half-proposed at shutdown.
func (n *Node) stopAutoRotate() {
	if n.stopRotate != nil {
		n.stopRotate()
		n.stopRotate = nil
	}
}

// onLeaderChange is raftstore.Config.OnLeaderChange: the reactor's
// leadership duties (ticks), then the rotator's.
func (n *Node) onLeaderChange(isLeader bool, leaderID string) {
	n.reactor.onLeaderChange(isLeader, leaderID)
	if a := n.rotator.Load(); a != nil {
		a.leaderChanged()
	}
}
