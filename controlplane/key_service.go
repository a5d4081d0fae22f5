package controlplane

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// keyService manages the cluster keyring. Private halves never leave the
// replicated state: ListKeys answers public keys only.
type keyService struct {
	adminv1.UnimplementedKeyServiceServer
	s *Server
}

// parsePurpose reads a purpose word; empty is allowed only where the
// caller says so (a filter).
func parsePurpose(command, word string, optional bool) (statev1.KeyPurpose, error) {
	if word == "" && optional {
		return statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED, nil
	}
	p, err := keyring.ParsePurpose(word)
	if err != nil {
		if optional {
			return 0, invalidArg(command, "purpose must be room-token or operator (or empty for both)")
		}
		return 0, invalidArg(command, "purpose must be room-token or operator")
	}
	return p, nil
}

func (ks *keyService) ListKeys(_ context.Context, req *adminv1.ListKeysRequest) (*adminv1.ListKeysResponse, error) {
	purpose, err := parsePurpose("keys.list", req.GetPurpose(), true)
	if err != nil {
		return nil, err
	}
	now := ks.s.now()
	var keys []*statev1.Key
	for _, k := range ks.s.cluster.Keys() {
		if purpose == statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED || k.GetPurpose() == purpose {
			keys = append(keys, k)
		}
	}
	slices.SortStableFunc(keys, func(a, b *statev1.Key) int {
		return cmp.Or(
			cmp.Compare(keyring.PurposeName(a.GetPurpose()), keyring.PurposeName(b.GetPurpose())),
			cmp.Compare(activatesAt(a), activatesAt(b)),
			cmp.Compare(a.GetKid(), b.GetKid()),
		)
	})
	out := make([]*adminv1.KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, &adminv1.KeyInfo{
			Kid:          k.GetKid(),
			Purpose:      keyring.PurposeName(k.GetPurpose()),
			State:        keyring.StateName(keyring.State(k, now)),
			PublicKey:    hex.EncodeToString(k.GetPublicKey()),
			CreatedAt:    timestampMs(k.GetCreatedUnixMs()),
			ActivatesAt:  timestampMs(activatesAt(k)),
			SupersededAt: timestampMs(k.GetSupersededUnixMs()),
			RetireAfter:  timestampMs(k.GetRetireAfterUnixMs()),
		})
	}
	return &adminv1.ListKeysResponse{Keys: out}, nil
}

// activatesAt is when a key starts (or started) signing.
func activatesAt(k *statev1.Key) int64 {
	if a := k.GetActivateUnixMs(); a != 0 {
		return a
	}
	return k.GetCreatedUnixMs()
}

// RotateKey generates a new key here (the leader), prepublished until
// now + prepublish; the state machine supersedes the keys it replaces at
// that instant and lets them verify for grace more.
func (ks *keyService) RotateKey(ctx context.Context, req *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error) {
	const command = "keys.rotate"
	purpose, err := parsePurpose(command, req.GetPurpose(), false)
	if err != nil {
		return nil, err
	}
	prepublish, err := checkDuration(command, "prepublish", req.GetPrepublish(), 0, 0, maxPrepublish)
	if err != nil {
		return nil, err
	}
	grace, err := checkDuration(command, "grace", req.GetGrace(), defaultGrace, 0, maxGrace)
	if err != nil {
		return nil, err
	}
	now := ks.s.now()
	key, err := keyring.Generate(purpose, now)
	if err != nil {
		ks.s.logger.ErrorContext(ctx, "keys.rotate: generate", "purpose", req.GetPurpose(), "error", err)
		return nil, internalError()
	}
	activates := now.Add(prepublish)
	key.State = statev1.KeyState_KEY_STATE_PREPUBLISHED
	key.ActivateUnixMs = activates.UnixMilli()
	if kek := ks.s.kek(); kek != nil {
		// Sealed before it is proposed: the seed never rests in the clear
		// in the Raft log, the WAL or a snapshot.
		if err := kek.Seal(key); err != nil {
			ks.s.logger.ErrorContext(ctx, "keys.rotate: seal", "kid", key.GetKid(), "error", err)
			return nil, internalError()
		}
	}
	idx, err := ks.s.apply(ctx, command, &statev1.Command{
		ProposedUnixMs: now.UnixMilli(),
		Kind: &statev1.Command_RotateKey{RotateKey: &statev1.RotateKey{
			NewKey:  key,
			GraceMs: grace.Milliseconds(),
		}},
	})
	if err != nil {
		setAuditKeyIDs(ctx, key.GetKid()) // the attempt, for the auditor
		return nil, err
	}
	// Applied on this node (the leader) when Apply returns, and a
	// superseded instant is stamped once, so this names exactly the keys
	// this rotation replaced.
	superseded := keyring.SupersededBy(ks.s.cluster.Keys(), key)
	setAuditKeyIDs(ctx, append([]string{key.GetKid()}, superseded...)...)
	ks.s.logger.InfoContext(ctx, "key rotated", "purpose", req.GetPurpose(), "kid", key.GetKid(),
		"supersedes", superseded, "sealed_with", key.GetKekId(), "activates_at", activates, "grace", grace, "index", idx)
	return &adminv1.RotateKeyResponse{
		Kid:         key.GetKid(),
		ActivatesAt: timestamppb.New(time.UnixMilli(key.GetActivateUnixMs())),
		RaftIndex:   idx,
	}, nil
}

// RetireKey retires a key at once. The state machine refuses to retire the
// last key that can sign for its purpose.
func (ks *keyService) RetireKey(ctx context.Context, req *adminv1.RetireKeyRequest) (*adminv1.RetireKeyResponse, error) {
	const command = "keys.retire"
	kid := req.GetKid()
	if kid == "" {
		return nil, invalidArg(command, "kid is required (see keys.list)")
	}
	if !slices.ContainsFunc(ks.s.cluster.Keys(), func(k *statev1.Key) bool { return k.GetKid() == kid }) {
		return nil, status.Errorf(codes.NotFound, "%s: no key %s (see keys.list)", command, clipped(kid))
	}
	setAuditKeyIDs(ctx, kid) // also on refusal: the attempt is what an auditor looks for
	idx, err := ks.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_RetireKey{RetireKey: &statev1.RetireKey{Kid: kid}}})
	if err != nil {
		return nil, err
	}
	ks.s.logger.InfoContext(ctx, "key retired", "kid", kid, "index", idx)
	return &adminv1.RetireKeyResponse{RaftIndex: idx}, nil
}
