package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func newAdminRooms(a *adminOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rooms",
		Short: "List, describe, lock and unlock rooms and manage their own keys (needs room.admin)",
	}
	cmd.AddCommand(newAdminRoomsList(a), newAdminRoomsDescribe(a), newAdminRoomsLock(a), newAdminRoomsUnlock(a),
		newAdminRoomsSetKey(a), newAdminRoomsRotateKey(a))
	return cmd
}

func newAdminRoomsList(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the rooms the cluster knows (list-rooms)",
		Example: "  nodalmerge admin rooms list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.ListRoomsResponse, error) {
					return adminv1.NewRoomServiceClient(cc).ListRooms(ctx, &adminv1.ListRoomsRequest{})
				},
				func(w io.Writer, r *adminv1.ListRoomsResponse) error {
					t := newTable(w, "ROOM", "MODE", "LIVE", "PEERS")
					for _, rm := range r.GetRooms() {
						t.row(rm.GetRoom(), rm.GetMode(), yesNo(rm.GetLive()), fmt.Sprint(rm.GetPeers()))
					}
					return t.flush()
				})
		},
	}
}

func newAdminRoomsDescribe(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "describe ROOM",
		Short:   "Show one room's security state and, where live, its peers (describe-room)",
		Example: "  nodalmerge admin rooms describe lobby",
		Args:    roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.DescribeRoomResponse, error) {
					return adminv1.NewRoomServiceClient(cc).DescribeRoom(ctx, &adminv1.DescribeRoomRequest{Room: room})
				},
				func(w io.Writer, r *adminv1.DescribeRoomResponse) error {
					placement := strings.Join(r.GetPlacement(), ",")
					if placement == "" {
						placement = "every node"
					}
					if err := fields(w,
						"room", r.GetRoom(),
						"mode", r.GetMode(),
						"placement", placement,
						"live", yesNo(r.GetLive()),
						"peers", fmt.Sprint(r.GetPeers()),
						"nodes", u64(r.GetNodes()),
						"tick", yesNo(r.GetTick()),
						"policy entries", fmt.Sprint(r.GetPolicyEntries()),
					); err != nil {
						return err
					}
					if len(r.GetKeys()) == 0 {
						_, err := fmt.Fprintln(w, "\nno room keys")
						return err
					}
					fmt.Fprintln(w)
					t := newTable(w, "KID", "STATE", "ADDED", "RETIRE AFTER", "PUBLIC KEY")
					for _, k := range r.GetKeys() {
						t.row(k.GetKid(), k.GetState(), ts(k.GetAddedAt()), ts(k.GetRetireAfter()), k.GetPublicKey())
					}
					return t.flush()
				})
		},
	}
}

func newAdminRoomsLock(a *adminOpts) *cobra.Command {
	var mode string
	cmd := &cobra.Command{
		Use:   "lock ROOM",
		Short: "Make hello.token mandatory in a room (lock-room)",
		Long: "Lock a room. --mode cluster admits tokens signed by the cluster keyring's room-token keys\n" +
			"(admin token mint-room); --mode own-keys admits tokens signed by the room's own keys\n" +
			"(rooms set-key, then token room), and needs at least one.",
		Example: "  nodalmerge admin rooms lock lobby --mode cluster\n" +
			"  nodalmerge admin rooms lock game-1 --mode own-keys",
		Args: roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			if mode != "cluster" && mode != "own-keys" {
				return fmt.Errorf("--mode %q: want cluster or own-keys", mode)
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.LockRoomResponse, error) {
					return adminv1.NewRoomServiceClient(cc).LockRoom(ctx, &adminv1.LockRoomRequest{Room: room, Mode: mode})
				},
				func(w io.Writer, r *adminv1.LockRoomResponse) error {
					_, err := fmt.Fprintf(w, "room %s locked, mode %s (raft index %d)\n", room, mode, r.GetRaftIndex())
					return err
				})
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "cluster or own-keys")
	cmd.MarkFlagRequired("mode")
	return cmd
}

func newAdminRoomsUnlock(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "unlock ROOM",
		Short:   "Open a room: no token needed (unlock-room)",
		Example: "  nodalmerge admin rooms unlock lobby",
		Args:    roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.UnlockRoomResponse, error) {
					return adminv1.NewRoomServiceClient(cc).UnlockRoom(ctx, &adminv1.UnlockRoomRequest{Room: room})
				},
				func(w io.Writer, r *adminv1.UnlockRoomResponse) error {
					_, err := fmt.Fprintf(w, "room %s unlocked (raft index %d)\n", room, r.GetRaftIndex())
					return err
				})
		},
	}
}

func newAdminRoomsSetKey(a *adminOpts) *cobra.Command {
	var pubkey, kid string
	cmd := &cobra.Command{
		Use:   "set-key ROOM",
		Short: "Add a trust key to a room (set-room-key)",
		Long: "Add an Ed25519 public key to the room's own keys; tokens its seed signs ('token room') verify\n" +
			"in the room. Without --kid the cluster derives one from the key (as 'token room-key' prints).",
		Example: "  nodalmerge admin rooms set-key lobby --pubkey $PUB",
		Args:    roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			if _, err := parsePubkey(pubkey); err != nil {
				return fmt.Errorf("--pubkey: %w", err)
			}
			req := &adminv1.SetRoomKeyRequest{Room: room, Pubkey: strings.ToLower(pubkey), Kid: kid}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.SetRoomKeyResponse, error) {
					return adminv1.NewRoomServiceClient(cc).SetRoomKey(ctx, req)
				},
				func(w io.Writer, r *adminv1.SetRoomKeyResponse) error {
					_, err := fmt.Fprintf(w, "room %s trusts key %s (raft index %d)\n", room, r.GetKid(), r.GetRaftIndex())
					return err
				})
		},
	}
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "hex of the key's 32-byte Ed25519 public key")
	cmd.Flags().StringVar(&kid, "kid", "", "key id (default: derived from the key)")
	cmd.MarkFlagRequired("pubkey")
	return cmd
}

func newAdminRoomsRotateKey(a *adminOpts) *cobra.Command {
	var (
		pubkey, kid string
		grace       time.Duration
	)
	cmd := &cobra.Command{
		Use:     "rotate-key ROOM",
		Short:   "Add a new room key; the room's other keys keep verifying for --grace (rotate-room-key)",
		Example: "  nodalmerge admin rooms rotate-key lobby --pubkey $NEWPUB --grace 1h",
		Args:    roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			if _, err := parsePubkey(pubkey); err != nil {
				return fmt.Errorf("--pubkey: %w", err)
			}
			req := &adminv1.RotateRoomKeyRequest{Room: room, Pubkey: strings.ToLower(pubkey), Kid: kid}
			if cmd.Flags().Changed("grace") {
				if grace < 0 {
					return fmt.Errorf("--grace %s: must not be negative (0s retires the replaced keys now)", grace)
				}
				req.Grace = durationpb.New(grace)
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.RotateRoomKeyResponse, error) {
					return adminv1.NewRoomServiceClient(cc).RotateRoomKey(ctx, req)
				},
				func(w io.Writer, r *adminv1.RotateRoomKeyResponse) error {
					_, err := fmt.Fprintf(w, "room %s rotated to key %s (raft index %d)\n", room, r.GetKid(), r.GetRaftIndex())
					return err
				})
		},
	}
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "hex of the new key's 32-byte Ed25519 public key")
	cmd.Flags().StringVar(&kid, "kid", "", "key id (default: derived from the key)")
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long the replaced keys keep verifying; 0s retires them now, closing their sessions with 4003 (default: the server's, 24h)")
	cmd.MarkFlagRequired("pubkey")
	return cmd
}
