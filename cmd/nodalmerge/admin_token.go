package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

func newAdminToken(a *adminOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint room and operator tokens through the cluster",
	}
	cmd.AddCommand(newAdminMintRoom(a), newAdminMintOperator(a))
	return cmd
}

func newAdminMintRoom(a *adminOpts) *cobra.Command {
	var (
		room, peer string
		caps       []string
		ttl        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mint-room",
		Short: "Mint a room token signed by the cluster keyring (token.mint-room, needs token.mint)",
		Long: "Ask the cluster to sign a room token with its active room-token key. The token verifies in rooms\n" +
			"locked with --mode cluster and grants its capability classes in open rooms. stdout gets only the\n" +
			"hello.token JSON (with --json: the whole response); the token id and expiry go to stderr.",
		Example: "  nodalmerge admin token mint-room --room lobby --peer-pubkey $PEER --caps room.admin --ttl 2h\n" +
			"  nodalmerge admin token mint-room --room game-1 --peer-pubkey $PEER --caps read:world/**,write:intent/**",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := roomArg("--room", room); err != nil {
				return err
			}
			if _, err := parsePubkey(peer); err != nil {
				return fmt.Errorf("--peer-pubkey: %w", err)
			}
			if err := checkRoomCaps(caps); err != nil {
				return fmt.Errorf("--caps: %w", err)
			}
			req := &adminv1.MintRoomTokenRequest{Room: room, PeerPubkey: strings.ToLower(peer), Caps: caps}
			if cmd.Flags().Changed("ttl") {
				if ttl <= 0 {
					return fmt.Errorf("--ttl %s: must be positive", ttl)
				}
				req.Ttl = durationpb.New(ttl)
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.MintRoomTokenResponse, error) {
					return adminv1.NewTokenServiceClient(cc).MintRoomToken(ctx, req)
				},
				func(w io.Writer, r *adminv1.MintRoomTokenResponse) error {
					if r.GetToken() == nil {
						return errors.New("MintRoomToken answered no token")
					}
					if err := printHelloToken(w, r.GetToken()); err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "room token %s for room %s, key %s, expires %s\n",
						r.GetTokenId(), room, r.GetToken().GetKid(), ts(r.GetExpiresAt()))
					return nil
				})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&room, "room", "", "the room the token admits to")
	fl.StringVar(&peer, "peer-pubkey", "", "hex of the peer's 32-byte Ed25519 public key")
	fl.StringSliceVar(&caps, "caps", nil, "capability classes and read:/write: path grants, comma separated")
	fl.DurationVar(&ttl, "ttl", 0, "lifetime of the token (default: the server's, 1h; never beyond the calling token)")
	for _, name := range []string{"room", "peer-pubkey"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

// printHelloToken writes the token in its hello.token wire form. protojson
// would write expiry (a uint64) as a string; clients expect a number.
func printHelloToken(w io.Writer, t *adminv1.RoomToken) error {
	caps := t.GetCaps()
	if caps == nil {
		caps = []string{}
	}
	b, err := json.Marshal(token.RoomToken{
		PeerPubkey: t.GetPeerPubkey(), Expiry: t.GetExpiry(), Caps: caps, Sig: t.GetSig(), Kid: t.GetKid(),
	})
	if err != nil {
		return fmt.Errorf("encode the token: %w", err)
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newAdminMintOperator(a *adminOpts) *cobra.Command {
	var grant operatorGrant
	cmd := &cobra.Command{
		Use:   "mint-operator",
		Short: "Mint a least-privilege operator token (token.mint-operator, needs cluster.admin)",
		Long:  operatorMintHelp + "\nThe same as 'nodalmerge token operator'; --json prints the whole response.",
		Example: "  nodalmerge admin token mint-operator --subject dashboard --caps cluster.read --ttl 8h\n" +
			"  nodalmerge admin token mint-operator --subject team-a --caps room.admin,policy.admin --rooms 'team-a-*'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.stale {
				return errors.New("--stale: only reads can be served stale")
			}
			a.conn.resolve(cmd.Flags())
			grant.ttlSet = cmd.Flags().Changed("ttl")
			return runMintOperator(cmd, &a.conn, grant, callError, a.json)
		},
	}
	grant.register(cmd)
	return cmd
}

func newAdminRevoke(a *adminOpts) *cobra.Command {
	var tokenID, room, peer, until string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a token, or a peer's tokens in a room (token.revoke, needs token.mint)",
		Long: "Revoke by token id (an operator token's jti, or a room token's id as printed at mint time),\n" +
			"or every token of a peer in a room. Sessions holding them close with 4003 on every node.\n" +
			"--until makes the revocation lapse: an RFC 3339 time or a duration from now.",
		Example: "  nodalmerge admin revoke --token-id 5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60\n" +
			"  nodalmerge admin revoke --room lobby --peer-pubkey $PEER --until 24h\n" +
			"  nodalmerge admin revoke --room lobby --peer-pubkey $PEER --until 2030-01-01T00:00:00Z",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := revokeRequest(tokenID, room, peer, until, time.Now())
			if err != nil {
				return err
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.RevokeResponse, error) {
					return adminv1.NewTokenServiceClient(cc).Revoke(ctx, req)
				},
				func(w io.Writer, r *adminv1.RevokeResponse) error {
					what := "token " + req.GetTokenId()
					if req.GetTokenId() == "" {
						what = "peer " + req.GetPeerPubkey() + " in room " + req.GetRoom()
					}
					lapse := ""
					if req.GetUntil() != nil {
						lapse = " until " + ts(req.GetUntil())
					}
					_, err := fmt.Fprintf(w, "revoked %s%s (raft index %d)\n", what, lapse, r.GetRaftIndex())
					return err
				})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tokenID, "token-id", "", "id of the token to revoke")
	fl.StringVar(&room, "room", "", "with --peer-pubkey: the room; with --token-id: the room the token is for (optional)")
	fl.StringVar(&peer, "peer-pubkey", "", "hex of the peer whose tokens in --room to revoke")
	fl.StringVar(&until, "until", "", "when the revocation lapses: RFC 3339 time or duration from now (default: never)")
	return cmd
}

// revokeRequest checks the flag combination and builds the request.
func revokeRequest(tokenID, room, peer, until string, now time.Time) (*adminv1.RevokeRequest, error) {
	req := &adminv1.RevokeRequest{TokenId: tokenID, Room: room}
	switch {
	case tokenID != "" && peer != "":
		return nil, errors.New("--token-id and --peer-pubkey: give one, not both")
	case tokenID == "" && peer == "":
		return nil, errors.New("give --token-id, or --room with --peer-pubkey")
	case peer != "" && room == "":
		return nil, errors.New("--peer-pubkey needs --room")
	}
	if room != "" {
		if err := roomArg("--room", room); err != nil {
			return nil, err
		}
	}
	if peer != "" {
		if _, err := parsePubkey(peer); err != nil {
			return nil, fmt.Errorf("--peer-pubkey: %w", err)
		}
		req.PeerPubkey = strings.ToLower(peer)
	}
	if until != "" {
		t, err := parseUntil(until, now)
		if err != nil {
			return nil, err
		}
		req.Until = timestamppb.New(t)
	}
	return req, nil
}

// parseUntil reads an RFC 3339 time or a positive duration from now.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if !t.After(now) {
			return time.Time{}, fmt.Errorf("--until %s: is in the past", s)
		}
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--until %q: want an RFC 3339 time (2030-01-01T00:00:00Z) or a duration (24h)", s)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("--until %s: must be positive", s)
	}
	return now.Add(d), nil
}
