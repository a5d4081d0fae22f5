package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint tokens: room tokens offline from a room key, operator tokens through the admin API",
	}
	cmd.AddCommand(newTokenOperator(), newTokenRoom(), newTokenRoomKey())
	return cmd
}

// operatorGrant is what an operator token is asked for.
type operatorGrant struct {
	subject     string
	caps, rooms []string
	ttl         time.Duration
	ttlSet      bool
}

// register adds the grant flags to cmd and marks the required ones.
func (g *operatorGrant) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&g.subject, "subject", "", "who the new token is for (its sub claim)")
	fl.StringSliceVar(&g.caps, "caps", nil, "capabilities to grant, comma separated, e.g. cluster.read,room.admin")
	fl.StringSliceVar(&g.rooms, "rooms", nil, "room globs to limit the token to, comma separated (default: all rooms, which only a caller holding all rooms may grant)")
	fl.DurationVar(&g.ttl, "ttl", 0, "lifetime of the token, at most 24h (default 1h, never beyond the calling token)")
	for _, name := range []string{"subject", "caps"} {
		cmd.MarkFlagRequired(name)
	}
}

const operatorMintHelp = "Mint an operator token holding a subset of the calling token's capabilities and rooms.\n" +
	"The new JWT is the only thing printed on stdout, so TOKEN=$(nodalmerge token operator ...) works;\n" +
	"its token id and expiry go to stderr."

func newTokenOperator() *cobra.Command {
	var (
		conn  connFlags
		grant operatorGrant
	)
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Mint a least-privilege operator token (prints only the JWT on stdout)",
		Long:  operatorMintHelp,
		Example: "  nodalmerge token operator --subject dashboard --caps cluster.read --ttl 8h\n" +
			"  nodalmerge token operator --admin 10.0.0.5:7879 --tls-ca ca.pem --tls-cert alice.pem --tls-key alice-key.pem \\\n" +
			"      --token-file alice.token --subject ci --caps room.admin,token.mint --rooms 'team-*'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn.resolve(cmd.Flags())
			grant.ttlSet = cmd.Flags().Changed("ttl")
			return runMintOperator(cmd, &conn, grant, func(err error) error { return legacyCallError(conn.addr, err) }, false)
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().SetNormalizeFunc(adminAddrAlias)
	grant.register(cmd)
	return cmd
}

// runMintOperator asks TokenService.MintOperatorToken for a token and
// prints the JWT alone on stdout, its id and expiry on stderr. It serves
// both `token operator` and `admin token mint-operator`; callErr formats
// a failed call, and jsonOut prints the whole response as protobuf JSON
// instead.
func runMintOperator(cmd *cobra.Command, cf *connFlags, g operatorGrant, callErr func(error) error, jsonOut bool) error {
	if g.ttlSet && g.ttl <= 0 {
		return fmt.Errorf("--ttl %s: must be positive", g.ttl)
	}
	ac, err := cf.dial()
	if err != nil {
		return err
	}
	defer ac.Close()

	req := &adminv1.MintOperatorTokenRequest{Subject: g.subject, Caps: g.caps, Rooms: g.rooms}
	if g.ttlSet {
		req.Ttl = durationpb.New(g.ttl)
	}
	ctx, cancel := ac.ctx(cmd.Context(), false)
	defer cancel()
	resp, err := adminv1.NewTokenServiceClient(ac.conn).MintOperatorToken(ctx, req)
	if err != nil {
		return callErr(err)
	}
	if resp.GetToken() == "" {
		return errors.New("MintOperatorToken answered no token")
	}
	if jsonOut {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	fmt.Fprintln(cmd.OutOrStdout(), resp.GetToken())
	fmt.Fprintf(cmd.ErrOrStderr(), "operator token %s for %s, expires %s\n",
		resp.GetTokenId(), g.subject, resp.GetExpiresAt().AsTime().Local().Format(time.RFC3339))
	return nil
}

// legacyCallError is the error form `token operator` has always printed,
// "MintOperatorToken at ADDR: InvalidArgument: message", kept because
// scripts and the end-to-end tests match on it. `admin` commands print
// the canonical "INVALID_ARGUMENT: message" (callError).
func legacyCallError(addr string, err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("MintOperatorToken at %s: %s: %s", addr, st.Code(), st.Message())
	}
	return fmt.Errorf("MintOperatorToken at %s: %w", addr, err)
}
