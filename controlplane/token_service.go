package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Limits of MintOperatorToken requests. They keep a minted token well under
// token.MaxTokenBytes: caps are bounded by the caller's own token, rooms and
// subject by these.
const (
	mintCommand        = "token.mint-operator"
	maxSubjectBytes    = 128
	maxMintRooms       = 32
	maxMintRoomBytes   = 128
	defaultOperatorTTL = time.Hour
	maxOperatorTTL     = 24 * time.Hour
	minOperatorTTL     = time.Second // JWT times have whole-second precision
)

// tokenService mints operator tokens. Authorization (cluster.admin) has
// already happened when a method runs; what is left is the no-escalation
// rule: the new token holds a subset of the caller's caps and rooms and
// never outlives the caller's token.
type tokenService struct {
	adminv1.UnimplementedTokenServiceServer
	s       *Server
	cluster Cluster
	logger  *slog.Logger
	now     func() time.Time
}

func (ts *tokenService) MintOperatorToken(ctx context.Context, req *adminv1.MintOperatorTokenRequest) (*adminv1.MintOperatorTokenResponse, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.Claims == nil {
		// cluster.admin is granted by tokens only, so a call without
		// claims here is a wiring bug. Fail closed.
		ts.logger.ErrorContext(ctx, "token.mint-operator reached without token claims")
		return nil, internalError()
	}
	caller := p.Claims
	now := ts.now()

	if err := checkSubject(req.GetSubject()); err != nil {
		return nil, err
	}
	if err := checkMintCaps(caller.Caps, req.GetCaps()); err != nil {
		return nil, err
	}
	if err := checkMintRooms(caller.Rooms, req.GetRooms()); err != nil {
		return nil, err
	}
	ttl, err := mintTTL(req)
	if err != nil {
		return nil, err
	}
	// Whole seconds, as the JWT carries them, so the answered expiry is
	// exactly the token's.
	expires := now.Add(ttl).Truncate(time.Second)
	if caller.ExpiresAt.Before(expires) {
		expires = caller.ExpiresAt
	}

	kid, priv, err := keyring.SignerWith(ts.cluster.Keys(), statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now, ts.s.kek())
	if err != nil {
		ts.logger.ErrorContext(ctx, "token.mint-operator: no operator signing key", "error", err)
		if errors.Is(err, keyring.ErrSealed) {
			// The message names the kid and the KEK id it needs, nothing secret.
			return nil, status.Errorf(codes.FailedPrecondition, "%s: %v", mintCommand, err)
		}
		if errors.Is(err, keyring.ErrNoSigningKey) {
			return nil, status.Error(codes.FailedPrecondition, mintCommand+": the cluster has no active operator signing key; activate or rotate one, then retry")
		}
		return nil, internalError()
	}
	id, err := token.NewID()
	if err != nil {
		ts.logger.ErrorContext(ctx, "token.mint-operator: token id", "error", err)
		return nil, internalError()
	}
	raw, err := token.MintOperator(kid, priv, token.OperatorClaims{
		ClusterID: ts.cluster.ClusterID(),
		Subject:   req.GetSubject(),
		Caps:      req.GetCaps(),
		Rooms:     req.GetRooms(),
		IssuedAt:  now,
		ExpiresAt: expires,
		ID:        id,
	})
	if err != nil {
		// Every request the checks above let through is mintable, so this
		// is a server fault. MintOperator's errors carry no secret.
		ts.logger.ErrorContext(ctx, "token.mint-operator: mint", "token_id", id, "error", err)
		return nil, internalError()
	}
	ts.logger.InfoContext(ctx, "operator token minted",
		"token_id", id, "subject", req.GetSubject(), "caps", req.GetCaps(), "rooms", req.GetRooms(),
		"expires_at", expires, "kid", kid, "by", p.Actor())
	return &adminv1.MintOperatorTokenResponse{
		Token:     raw,
		TokenId:   id,
		ExpiresAt: timestamppb.New(expires),
	}, nil
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, mintCommand+": "+format, args...)
}

func checkSubject(subject string) error {
	switch {
	case subject == "":
		return invalid("subject is required: name who the token is for")
	case len(subject) > maxSubjectBytes:
		return invalid("subject is %d bytes; use at most %d", len(subject), maxSubjectBytes)
	}
	return nil
}

// checkMintCaps enforces that every requested capability is held, exactly,
// by the caller. cluster.node is refused as invalid rather than denied: no
// token can carry it, whoever asks.
func checkMintCaps(held, want []string) error {
	if len(want) == 0 {
		return invalid("caps is empty: list the capabilities the token grants, e.g. cluster.read")
	}
	seen := make(map[string]bool, len(want))
	for _, c := range want {
		switch {
		case c == "":
			return invalid("caps contains an empty string")
		case c == token.CapClusterNode:
			return invalid("cannot grant %s: it is held only by node certificates, never by tokens", token.CapClusterNode)
		case seen[c]:
			return invalid("caps lists %q twice", c)
		case !token.HasCap(held, c):
			return status.Errorf(codes.PermissionDenied, "%s: cannot grant %s: the calling token does not hold it", mintCommand, c)
		}
		seen[c] = true
	}
	return nil
}

// checkMintRooms enforces that the new token's rooms lie inside the
// caller's. A caller limited to some rooms must list rooms (an empty list
// would mean all rooms), each either one of its own globs verbatim or a
// plain room name its globs cover. New globs are refused even when they
// look narrower: glob containment is not decided here, so a subset cannot
// be proven.
func checkMintRooms(held, want []string) error {
	if len(want) > maxMintRooms {
		return invalid("rooms lists %d entries; use at most %d", len(want), maxMintRooms)
	}
	seen := make(map[string]bool, len(want))
	for _, r := range want {
		switch {
		case r == "":
			return invalid("rooms contains an empty string")
		case len(r) > maxMintRoomBytes:
			return invalid("a room entry is %d bytes; use at most %d", len(r), maxMintRoomBytes)
		case seen[r]:
			return invalid("rooms lists %q twice", r)
		}
		seen[r] = true
	}
	if len(held) == 0 {
		return nil // the caller holds every room
	}
	if len(want) == 0 {
		return status.Errorf(codes.PermissionDenied, "%s: cannot grant all rooms: the calling token is limited to %s; list rooms inside them",
			mintCommand, strings.Join(held, ", "))
	}
	for _, r := range want {
		if !roomWithin(held, r) {
			return status.Errorf(codes.PermissionDenied, "%s: cannot grant room %q: the calling token's rooms do not cover it", mintCommand, r)
		}
	}
	return nil
}

func roomWithin(held []string, r string) bool {
	for _, h := range held {
		if h == r {
			return true
		}
	}
	return !strings.Contains(r, "*") && token.RoomAllowed(held, r)
}

// mintTTL answers the requested lifetime: one hour when unset, otherwise
// between one second (the JWT's precision) and 24 hours.
func mintTTL(req *adminv1.MintOperatorTokenRequest) (time.Duration, error) {
	d := req.GetTtl()
	if d == nil {
		return defaultOperatorTTL, nil
	}
	if err := d.CheckValid(); err != nil {
		// The library's message varies its spacing on purpose; ours is fixed.
		return 0, invalid("ttl is not a valid duration: seconds and nanos must be in range and have the same sign")
	}
	ttl := d.AsDuration()
	if ttl < minOperatorTTL || ttl > maxOperatorTTL {
		return 0, invalid("ttl %s is out of range: use 1s to 24h (or leave it unset for 1h)", ttl)
	}
	return ttl, nil
}
