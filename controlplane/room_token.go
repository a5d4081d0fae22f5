package controlplane

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Room token lifetimes: one hour by default, at most a day, and never
// beyond the caller's own token (an operator JWT, or the room token of the
// WebSocket session asking), so a credential cannot be stretched by
// minting from it.
const (
	defaultRoomTokenTTL = time.Hour
	maxRoomTokenTTL     = 24 * time.Hour
)

// MintRoomToken signs a room token with the cluster's active room-token
// key. No escalation: the capability classes granted must be held by the
// caller, and where the caller's own token limits reads or writes to path
// globs, the new token must carry grants among those globs (a token
// without grants of a kind has no limit of that kind).
func (ts *tokenService) MintRoomToken(ctx context.Context, req *adminv1.MintRoomTokenRequest) (*adminv1.MintRoomTokenResponse, error) {
	const command = "token.mint-room"
	p, ok := PrincipalFrom(ctx)
	if !ok || (p.Claims == nil && p.Session == nil) {
		// token.mint is granted by tokens only: a wiring bug. Fail closed.
		ts.logger.ErrorContext(ctx, "token.mint-room reached without a token")
		return nil, internalError()
	}
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	peer, err := checkPubkey(command, "peer_pubkey", req.GetPeerPubkey())
	if err != nil {
		return nil, err
	}
	caps := req.GetCaps()
	if err := checkRoomCaps(command, caps); err != nil {
		return nil, err
	}
	if err := checkRoomCapsHeld(command, p.caps(), caps); err != nil {
		return nil, err
	}
	ttl, err := checkDuration(command, "ttl", req.GetTtl(), defaultRoomTokenTTL, time.Second, maxRoomTokenTTL)
	if err != nil {
		return nil, err
	}
	now := ts.now()
	expires := now.Add(ttl).Truncate(time.Second)
	if limit := callerExpiry(p); !limit.IsZero() && limit.Before(expires) {
		expires = limit.Truncate(time.Second)
	}
	if !expires.After(now) {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: the calling token expires within a second; use a fresh token", command)
	}
	kid, priv, err := keyring.SignerWith(ts.cluster.Keys(), statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, now, ts.s.kek())
	if err != nil {
		ts.logger.ErrorContext(ctx, "token.mint-room: no room-token signing key", "error", err)
		if errors.Is(err, keyring.ErrSealed) {
			// The message names the kid and the KEK id it needs, nothing secret.
			return nil, status.Errorf(codes.FailedPrecondition, "%s: %v", command, err)
		}
		if errors.Is(err, keyring.ErrNoSigningKey) {
			return nil, status.Errorf(codes.FailedPrecondition,
				"%s: the cluster has no active room-token signing key; rotate one (keys.rotate, purpose room-token), then retry", command)
		}
		return nil, internalError()
	}
	tok := token.SignRoom(priv, room, peer, uint64(expires.Unix()), caps, kid)
	id := tok.ID()
	ts.logger.InfoContext(ctx, "room token minted", "token_id", id, "room", room, "peer", tok.PeerPubkey,
		"caps", tok.Caps, "expires_at", expires, "kid", kid, "by", p.Actor())
	return &adminv1.MintRoomTokenResponse{
		Token: &adminv1.RoomToken{
			PeerPubkey: tok.PeerPubkey,
			Expiry:     tok.Expiry,
			Caps:       tok.Caps,
			Sig:        tok.Sig,
			Kid:        tok.Kid,
		},
		TokenId:   id,
		ExpiresAt: timestamppb.New(expires),
	}, nil
}

// callerExpiry answers when the caller's own credential ends; zero when
// unknown.
func callerExpiry(p Principal) time.Time {
	switch {
	case p.Claims != nil:
		return p.Claims.ExpiresAt
	case p.Session != nil:
		return p.Session.TokenExpiry
	}
	return time.Time{}
}

// checkRoomCaps validates the shape of room-token caps: what a token can
// carry, no duplicates, and path grants that compile.
func checkRoomCaps(command string, caps []string) error {
	if err := token.ValidateRoomCaps(caps); err != nil {
		return invalidArg(command, "caps: %s", strings.TrimPrefix(err.Error(), "token: "))
	}
	seen := make(map[string]bool, len(caps))
	for i, c := range caps {
		if seen[c] {
			return invalidArg(command, "caps: cap %d is listed twice", i)
		}
		seen[c] = true
		for _, prefix := range []string{token.ReadGrantPrefix, token.WriteGrantPrefix} {
			if glob, ok := strings.CutPrefix(c, prefix); ok {
				if _, err := pathglob.Compile(glob); err != nil {
					return invalidArg(command, "caps: cap %d is not a valid path glob (e.g. write:world/**)", i)
				}
			}
		}
	}
	return nil
}

// checkRoomCapsHeld is the no-escalation rule of room tokens.
func checkRoomCapsHeld(command string, held, want []string) error {
	for _, c := range token.CapabilityClasses(want) {
		if !token.HasCap(held, c) {
			return status.Errorf(codes.PermissionDenied, "%s: cannot grant %s: the calling token does not hold it", command, c)
		}
	}
	kinds := []struct {
		prefix string
		grants func([]string) []string
	}{{token.ReadGrantPrefix, token.ReadGrants}, {token.WriteGrantPrefix, token.WriteGrants}}
	for _, k := range kinds {
		limit := k.grants(held)
		if len(limit) == 0 {
			continue // the caller is not limited for this kind
		}
		asked := k.grants(want)
		if len(asked) == 0 {
			return status.Errorf(codes.PermissionDenied,
				"%s: cannot grant unlimited %s access: the calling token is limited to %s; list %s grants among them",
				command, strings.TrimSuffix(k.prefix, ":"), strings.Join(limit, ", "), k.prefix)
		}
		for _, g := range asked {
			if !slices.Contains(limit, g) {
				return status.Errorf(codes.PermissionDenied, "%s: cannot grant %s%s: the calling token's %s grants do not include it",
					command, k.prefix, g, strings.TrimSuffix(k.prefix, ":"))
			}
		}
	}
	return nil
}

// Revoke records a revocation: a token id (an operator jti or a room
// token id), or a peer in a room, optionally until a time. The actor is
// the caller, for the audit trail of the replicated state.
//
// A token id names no room, so a caller limited to some rooms must name
// one of them to be authorized, but the revocation applies to the token
// wherever it is used: token ids are unguessable, so this lets a room
// admin revoke only tokens it has seen.
func (ts *tokenService) Revoke(ctx context.Context, req *adminv1.RevokeRequest) (*adminv1.RevokeResponse, error) {
	const command = "token.revoke"
	p, _ := PrincipalFrom(ctx)
	tid, room, peerHex := req.GetTokenId(), req.GetRoom(), req.GetPeerPubkey()
	until, err := checkTimestamp(command, "until", req.GetUntil())
	if err != nil {
		return nil, err
	}
	now := ts.now()
	if !until.IsZero() && !until.After(now) {
		return nil, invalidArg(command, "until is in the past: leave it unset to revoke for good")
	}
	rev := &statev1.Revocation{UntilUnixMs: unixMs(until), Actor: p.Actor()}
	if room != "" {
		if err := checkRoom(command, room); err != nil {
			return nil, err
		}
	}
	switch {
	case tid != "" && peerHex != "":
		return nil, invalidArg(command, "give token_id, or room and peer_pubkey, not both")
	case tid != "":
		if err := checkTokenID(command, tid); err != nil {
			return nil, err
		}
		rev.TokenId = tid
	case peerHex != "":
		if room == "" {
			return nil, invalidArg(command, "room is required with peer_pubkey")
		}
		pub, err := checkPubkey(command, "peer_pubkey", peerHex)
		if err != nil {
			return nil, err
		}
		rev.Room, rev.PeerPubkey = room, pub
	default:
		return nil, invalidArg(command, "name what to revoke: token_id, or room and peer_pubkey")
	}
	idx, err := ts.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_Revoke{Revoke: &statev1.Revoke{Revocation: rev}}})
	if err != nil {
		return nil, err
	}
	ts.logger.InfoContext(ctx, "revoked", "token_id", rev.GetTokenId(), "room", rev.GetRoom(),
		"peer", hex.EncodeToString(rev.GetPeerPubkey()), "until", until, "by", p.Actor(), "index", idx)
	return &adminv1.RevokeResponse{RaftIndex: idx}, nil
}

// checkTokenID bounds a token id to printable ASCII without spaces: ids
// are jtis and hex room-token ids, and they end up in logs.
func checkTokenID(command, id string) error {
	if len(id) > maxTokenIDBytes {
		return invalidArg(command, "token_id is %d bytes; token ids are at most %d", len(id), maxTokenIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return invalidArg(command, "token_id must be printable ASCII without spaces (a jti or a room token id)")
		}
	}
	return nil
}
