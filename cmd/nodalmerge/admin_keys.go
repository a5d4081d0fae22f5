package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

func newAdminKeys(a *adminOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List, rotate and retire the cluster keyring's keys",
	}
	cmd.AddCommand(newAdminKeysList(a), newAdminKeysRotate(a), newAdminKeysRetire(a))
	return cmd
}

// checkPurpose accepts the SPEC's purpose words.
func checkPurpose(p string) error {
	if _, err := keyring.ParsePurpose(p); err != nil {
		return fmt.Errorf("--purpose %q: want room-token or operator", p)
	}
	return nil
}

func newAdminKeysList(a *adminOpts) *cobra.Command {
	var purpose string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the keyring's keys, public halves only (keys.list, needs cluster.read)",
		Example: "  nodalmerge admin keys list\n  nodalmerge admin keys list --purpose operator",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if purpose != "" {
				if err := checkPurpose(purpose); err != nil {
					return err
				}
			}
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.ListKeysResponse, error) {
					return adminv1.NewKeyServiceClient(cc).ListKeys(ctx, &adminv1.ListKeysRequest{Purpose: purpose})
				},
				func(w io.Writer, r *adminv1.ListKeysResponse) error {
					t := newTable(w, "KID", "PURPOSE", "STATE", "CREATED", "ACTIVATES", "SUPERSEDED", "RETIRE AFTER", "PUBLIC KEY")
					for _, k := range r.GetKeys() {
						t.row(k.GetKid(), k.GetPurpose(), k.GetState(), ts(k.GetCreatedAt()), ts(k.GetActivatesAt()),
							ts(k.GetSupersededAt()), ts(k.GetRetireAfter()), k.GetPublicKey())
					}
					return t.flush()
				})
		},
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "only keys of this purpose: room-token or operator")
	return cmd
}

func newAdminKeysRotate(a *adminOpts) *cobra.Command {
	var (
		purpose           string
		prepublish, grace time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key for a purpose (keys.rotate, needs cluster.admin)",
		Long: "Add a new key. It verifies at once, signs after --prepublish, and the keys it replaces keep\n" +
			"verifying for --grace after that, so no valid token breaks (server default grace: 24h).",
		Example: "  nodalmerge admin keys rotate --purpose operator\n" +
			"  nodalmerge admin keys rotate --purpose room-token --prepublish 10m --grace 48h",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPurpose(purpose); err != nil {
				return err
			}
			req := &adminv1.RotateKeyRequest{Purpose: purpose}
			if cmd.Flags().Changed("prepublish") {
				if prepublish < 0 {
					return fmt.Errorf("--prepublish %s: must not be negative", prepublish)
				}
				req.Prepublish = durationpb.New(prepublish)
			}
			if cmd.Flags().Changed("grace") {
				if grace <= 0 {
					return fmt.Errorf("--grace %s: must be positive", grace)
				}
				req.Grace = durationpb.New(grace)
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.RotateKeyResponse, error) {
					return adminv1.NewKeyServiceClient(cc).RotateKey(ctx, req)
				},
				func(w io.Writer, r *adminv1.RotateKeyResponse) error {
					_, err := fmt.Fprintf(w, "new %s key %s, signs from %s (raft index %d)\n",
						purpose, r.GetKid(), ts(r.GetActivatesAt()), r.GetRaftIndex())
					return err
				})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&purpose, "purpose", "", "room-token or operator")
	fl.DurationVar(&prepublish, "prepublish", 0, "how long the new key only verifies before it signs (default 0: signs at once)")
	fl.DurationVar(&grace, "grace", 0, "how long the replaced keys keep verifying after the new key signs (default: the server's, 24h)")
	cmd.MarkFlagRequired("purpose")
	return cmd
}

func newAdminKeysRetire(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "retire KID",
		Short: "Stop a key from signing and verifying now (keys.retire, needs cluster.admin)",
		Long: "Retire a key at once, e.g. after a leak: tokens it signed stop working and their sessions are\n" +
			"closed with 4003. The cluster refuses to retire the last key able to sign for its purpose.",
		Example: "  nodalmerge admin keys retire op-1a2b3c4d5e6f",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kid := args[0]
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.RetireKeyResponse, error) {
					return adminv1.NewKeyServiceClient(cc).RetireKey(ctx, &adminv1.RetireKeyRequest{Kid: kid})
				},
				func(w io.Writer, r *adminv1.RetireKeyResponse) error {
					_, err := fmt.Fprintf(w, "retired key %s (raft index %d)\n", kid, r.GetRaftIndex())
					return err
				})
		},
	}
}
