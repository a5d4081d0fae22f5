package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/loadgen"
)

// revokeFields maps RevokeConfig's fields to flags.
var revokeFields = map[string]string{
	"URLs": "--url", "Sessions": "--sessions", "Peers": "--peers", "By": "--by", "Rounds": "--rounds",
	"CloseTimeout": "--close-timeout", "RoomKeySeed": "--" + roomKeySeedFlag,
}

func newRevokeCommand(c *common) *cobra.Command {
	cfg := loadgen.DefaultRevokeConfig()
	var conn adminFlags
	var by string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Sessions in a locked room, then TokenService.Revoke: time from the call to each 4003 close",
		Long: "revoke measures how fast a revocation reaches the sessions it names, on every node. Each of\n" +
			"--rounds rounds sets the room key on a fresh room and locks it (own-keys) through the admin\n" +
			"API, opens --sessions sessions spread round robin over the --url addresses (one per node),\n" +
			"each with a token signed offline for its peer, and once every session has its welcome calls\n" +
			"TokenService.Revoke on the first --admin address: by token id (--by token) or by room and\n" +
			"peer (--by peer). Per revoked session it times the call's start → the 4003 \"token revoked\"\n" +
			"close the client reads, and reports p50/p99/max overall, per round (\"revoke → last session\n" +
			"closed\") and per URL. The sessions are spread over --peers peer keys and only peer 0 is\n" +
			"revoked: with more than one, the other peers' sessions must stay open (each answers a round\n" +
			"trip after the revoked ones have closed). The operator token needs room.admin and token.mint.",
		Example: "  # one node (operator material from ./.nodalmerge): 300 sessions of one peer, 5 rounds\n" +
			"  nodalmerge-bench revoke\n\n" +
			"  # three nodes, revoked through a follower, by peer; 30 peers: peer 0's sessions go, the rest stay\n" +
			"  nodalmerge-bench revoke --url ws://127.0.0.1:7878,ws://127.0.0.1:7978,ws://127.0.0.1:8078 \\\n" +
			"    --admin 127.0.0.1:7979 --by peer --peers 30 --rounds 10 \\\n" +
			"    --tls-ca ca/ca.pem --tls-cert ops/alice.pem --tls-key ops/alice-key.pem --token-file d1/bootstrap-operator.token\n\n" +
			"  # the report's figures on a fresh three-node cluster\n" +
			"  loadgen/scripts/three-node.sh security",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.serverPID != 0 {
				return errors.New("invalid --server-pid: revoke measures latency only, not server usage")
			}
			if err := c.validateJSONPath(); err != nil {
				return err
			}
			if err := conn.load(cmd.Flags(), &cfg.Admin); err != nil {
				return err
			}
			cfg.By = loadgen.RevokeBy(by)
			t := c.target()
			cfg.RoomPrefix, cfg.Logger = t.RoomPrefix, t.Logger
			res, err := loadgen.RunRevoke(cmd.Context(), cfg)
			if err != nil {
				return flagError(err, withAdminTarget(revokeFields))
			}
			return c.finish(res)
		},
	}
	f := cmd.Flags()
	// Shadows the root's single --url: this scenario spreads its
	// sessions over every node of a cluster.
	f.StringSliceVar(&cfg.URLs, "url", cfg.URLs, "WebSocket base URL(s) ws://host:port[,ws://host:port], one per node; sessions are spread over them round robin")
	f.IntVar(&cfg.Sessions, "sessions", cfg.Sessions, "sessions opened per round")
	f.IntVar(&cfg.Peers, "peers", cfg.Peers, "peer keys the sessions are spread over; only peer 0's sessions are revoked")
	f.StringVar(&by, "by", string(cfg.By), "what Revoke names: token (the room token id) or peer (room + peer_pubkey)")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds, each with a fresh room and fresh peers")
	f.DurationVar(&cfg.CloseTimeout, "close-timeout", cfg.CloseTimeout, "how long after the call to wait for every revoked session to close")
	f.StringVar(&cfg.RoomKeySeed, roomKeySeedFlag, "", roomKeySeedHelp)
	conn.register(f, "admin gRPC address host:port where the room keys, locks and Revoke calls go (the first, if several)")
	return cmd
}
