package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func newAdminPolicy(a *adminOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Read and set a room's write policy (needs policy.admin)",
	}
	cmd.AddCommand(newAdminPolicyGet(a), newAdminPolicySet(a))
	return cmd
}

func newAdminPolicyGet(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "get ROOM",
		Short:   "Show the policy in force and its timeline (get-policy)",
		Example: "  nodalmerge admin policy get lobby",
		Args:    roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.GetPolicyResponse, error) {
					return adminv1.NewPolicyServiceClient(cc).GetPolicy(ctx, &adminv1.GetPolicyRequest{Room: room})
				},
				func(w io.Writer, r *adminv1.GetPolicyResponse) error {
					fmt.Fprintf(w, "room %s: default %s\n", room, r.GetDefault())
					t := newTable(w, "PATH GLOB", "CAN WRITE")
					for _, rule := range r.GetRules() {
						t.row(rule.GetPathGlob(), writers(rule.GetCanWrite()))
					}
					if err := t.flush(); err != nil {
						return err
					}
					if len(r.GetTimeline()) == 0 {
						return nil
					}
					fmt.Fprintln(w, "\ntimeline:")
					tl := newTable(w, "EFFECTIVE LAMPORT", "DEFAULT", "RULES", "SET AT")
					for _, e := range r.GetTimeline() {
						tl.row(u64(e.GetEffectiveLamport()), e.GetDefault(), fmt.Sprint(len(e.GetRules())), ts(e.GetSetAt()))
					}
					return tl.flush()
				})
		},
	}
}

// writers prints a rule's authors; an empty list means nobody may write.
func writers(keys []string) string {
	if len(keys) == 0 {
		return "(nobody)"
	}
	return strings.Join(keys, ",")
}

func newAdminPolicySet(a *adminOpts) *cobra.Command {
	var (
		def   string
		rules []string
	)
	cmd := &cobra.Command{
		Use:   "set ROOM",
		Short: "Append a policy entry to a room's timeline (set-policy)",
		Long: "Set a room's write policy from its next Lamport on. Rules are first-match: each --rule is\n" +
			"GLOB=HEX,HEX,... (authors' public keys; GLOB= with no keys lets nobody write there). A path\n" +
			"no rule matches gets --default. Repeat --rule, in order.",
		Example: "  nodalmerge admin policy set lobby --default deny --rule 'world/**=$ALICE,$BOB' --rule 'chat/**=$ALICE'\n" +
			"  nodalmerge admin policy set lobby --default allow --rule 'admin/**='",
		Args: roomArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			room := args[0]
			if def != "allow" && def != "deny" {
				return fmt.Errorf("--default %q: want allow or deny", def)
			}
			req := &adminv1.SetPolicyRequest{Room: room, Default: def}
			for _, s := range rules {
				r, err := parseRule(s)
				if err != nil {
					return err
				}
				req.Rules = append(req.Rules, r)
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.SetPolicyResponse, error) {
					return adminv1.NewPolicyServiceClient(cc).SetPolicy(ctx, req)
				},
				func(w io.Writer, r *adminv1.SetPolicyResponse) error {
					_, err := fmt.Fprintf(w, "policy of room %s set, effective from lamport %d (raft index %d)\n",
						room, r.GetEffectiveLamport(), r.GetRaftIndex())
					return err
				})
		},
	}
	cmd.Flags().StringVar(&def, "default", "", "allow or deny: what a path no rule matches gets")
	// StringArray, not StringSlice: a rule's writers are comma separated.
	cmd.Flags().StringArrayVar(&rules, "rule", nil, "GLOB=HEX,HEX,... (repeatable, first match wins)")
	cmd.MarkFlagRequired("default")
	return cmd
}

// parseRule reads GLOB=HEX,HEX. The glob is everything before the last
// '=' (hex keys never contain one).
func parseRule(s string) (*adminv1.PolicyRule, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 {
		return nil, fmt.Errorf("--rule %q: want GLOB=HEX,HEX,... (GLOB= for nobody)", s)
	}
	r := &adminv1.PolicyRule{PathGlob: s[:i]}
	if keys := s[i+1:]; keys != "" {
		for _, k := range strings.Split(keys, ",") {
			if _, err := parsePubkey(k); err != nil {
				return nil, fmt.Errorf("--rule %q: %w", s, err)
			}
			r.CanWrite = append(r.CanWrite, strings.ToLower(k))
		}
	}
	return r, nil
}
