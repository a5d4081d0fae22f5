package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// tokenCallTimeout bounds one admin call from the CLI, so a wrong address
// fails instead of hanging.
const tokenCallTimeout = 30 * time.Second

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint tokens through the admin API",
	}
	cmd.AddCommand(newTokenOperator())
	return cmd
}

// operatorTokenFlags are the flags of `token operator`. The TLS and token
// file flags default to the files `serve` writes into --state-dir, so on
// the machine that runs a dev node no flag but the grant is needed.
type operatorTokenFlags struct {
	admin, stateDir        string
	tlsCA, tlsCert, tlsKey string
	tokenFile              string
	subject                string
	caps, rooms            []string
	ttl                    time.Duration
	ttlSet                 bool
}

// resolve fills the file flags left empty from --state-dir.
func (f *operatorTokenFlags) resolve() {
	def := func(v *string, name ...string) {
		if *v == "" {
			*v = filepath.Join(append([]string{f.stateDir}, name...)...)
		}
	}
	def(&f.tlsCA, "tls", "ca.pem")
	def(&f.tlsCert, "tls", "operator.pem")
	def(&f.tlsKey, "tls", "operator-key.pem")
	def(&f.tokenFile, "bootstrap-operator.token")
}

func newTokenOperator() *cobra.Command {
	var f operatorTokenFlags
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Mint a least-privilege operator token (prints only the JWT on stdout)",
		Long: "Mint an operator token holding a subset of the calling token's capabilities and rooms.\n" +
			"The new JWT is the only thing printed on stdout, so TOKEN=$(nodalmerge token operator ...) works;\n" +
			"its token id and expiry go to stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.ttlSet = cmd.Flags().Changed("ttl")
			f.resolve()
			return runTokenOperator(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.admin, "admin", "127.0.0.1:7879", "admin gRPC address of a node")
	fl.StringVar(&f.stateDir, "state-dir", ".nodalmerge", "state folder whose TLS material and bootstrap token are the defaults below")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "cluster CA bundle (default STATE-DIR/tls/ca.pem)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "operator client certificate (default STATE-DIR/tls/operator.pem)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "operator client key (default STATE-DIR/tls/operator-key.pem)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the calling operator token (default STATE-DIR/bootstrap-operator.token)")
	fl.StringVar(&f.subject, "subject", "", "who the new token is for (its sub claim)")
	fl.StringSliceVar(&f.caps, "caps", nil, "capabilities to grant, comma separated, e.g. cluster.read,room.admin")
	fl.StringSliceVar(&f.rooms, "rooms", nil, "room globs to limit the token to, comma separated (default: all rooms, which only a caller holding all rooms may grant)")
	fl.DurationVar(&f.ttl, "ttl", 0, "lifetime of the token, at most 24h (default 1h, never beyond the calling token)")
	for _, name := range []string{"subject", "caps"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runTokenOperator(cmd *cobra.Command, f operatorTokenFlags) error {
	if f.ttlSet && f.ttl <= 0 {
		return fmt.Errorf("--ttl %s: must be positive", f.ttl)
	}
	raw, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return fmt.Errorf("--token-file: read the calling token: %w", err)
	}
	callerToken := strings.TrimSpace(string(raw))
	if callerToken == "" {
		return fmt.Errorf("--token-file %s: file is empty", f.tokenFile)
	}
	material, err := pki.Load(f.tlsCA, f.tlsCert, f.tlsKey)
	if err != nil {
		return fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	conn, err := grpc.NewClient(f.admin, grpc.WithTransportCredentials(credentials.NewTLS(material.ClientConfig(""))))
	if err != nil {
		return fmt.Errorf("--admin %s: %w", f.admin, err)
	}
	defer conn.Close()

	req := &adminv1.MintOperatorTokenRequest{Subject: f.subject, Caps: f.caps, Rooms: f.rooms}
	if f.ttlSet {
		req.Ttl = durationpb.New(f.ttl)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), tokenCallTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+callerToken)
	resp, err := adminv1.NewTokenServiceClient(conn).MintOperatorToken(ctx, req)
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return fmt.Errorf("MintOperatorToken at %s: %s: %s", f.admin, st.Code(), st.Message())
		}
		return fmt.Errorf("MintOperatorToken at %s: %w", f.admin, err)
	}
	if resp.GetToken() == "" {
		return errors.New("MintOperatorToken answered no token")
	}
	fmt.Fprintln(cmd.OutOrStdout(), resp.GetToken())
	fmt.Fprintf(cmd.ErrOrStderr(), "operator token %s for %s, expires %s\n",
		resp.GetTokenId(), f.subject, resp.GetExpiresAt().AsTime().Local().Format(time.RFC3339))
	return nil
}
