package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/loadgen"
)

func newFanoutCommand(c *common) *cobra.Command {
	cfg := loadgen.DefaultFanoutConfig()
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Publishers send signed one-node packs to rooms of subscribers; measures delivery",
		Long: "fanout opens --rooms rooms, each with --subscribers receivers and --publishers publishers.\n" +
			"Each publisher sends pre-signed one-node packs (one MapSet of --payload bytes) at --rate\n" +
			"packs/s, or as fast as --window packs in flight allow (in flight = sent, not yet pack-acked).\n" +
			"After --warmup it measures for --duration: delivered messages/s summed over receivers,\n" +
			"published/s, and end-to-end latency (publisher send → receiver read) on --samples receivers.\n" +
			"The defaults are Centrifugo's benchmark shape.",
		Example: "  # Centrifugo's shape: 1 room, 100 subscribers, 1 publisher at max rate, window 64, 128 B, 10 s\n" +
			"  nodalmerge-bench fanout --server-pid $(pgrep -n nodalmerge) --json fanout.json\n\n" +
			"  # 1000 subscribers at 200 messages/s\n" +
			"  nodalmerge-bench fanout --subscribers 1000 --rate 200\n\n" +
			"  # 10 rooms of 50, two publishers each\n" +
			"  nodalmerge-bench fanout --rooms 10 --subscribers 50 --publishers 2 --rate 1000",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validateJSONPath(); err != nil {
				return err
			}
			cfg.Target = c.target()
			res, err := loadgen.RunFanout(cmd.Context(), cfg)
			if err != nil {
				return flagError(err, map[string]string{
					"Rooms": "--rooms", "Subscribers": "--subscribers", "Publishers": "--publishers",
					"Rate": "--rate", "Window": "--window", "PayloadBytes": "--payload", "Warmup": "--warmup",
					"Duration": "--duration", "Samples": "--samples", "Presign": "--presign", "Drain": "--drain",
				})
			}
			return c.finish(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "number of rooms")
	f.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "receivers per room")
	f.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "publishers per room")
	f.Float64Var(&cfg.Rate, "rate", 0, "packs per second per publisher (0 = max rate, bounded by --window)")
	f.IntVar(&cfg.Window, "window", cfg.Window, "packs a publisher may have sent and not yet seen acknowledged")
	f.IntVar(&cfg.PayloadBytes, "payload", cfg.PayloadBytes, "bytes of the MapSet value in each node (at least 16)")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time publishing before measuring")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time")
	f.IntVar(&cfg.Samples, "samples", cfg.Samples, "receivers (over all rooms) that decode packs to measure latency; the rest only count")
	f.IntVar(&cfg.Presign, "presign", 0, "nodes to sign per publisher before the run (0 = from --rate, or 30000/s at max rate, × warm-up+duration)")
	f.DurationVar(&cfg.Drain, "drain", 10*time.Second, "after the window, how long to wait for the last acks and deliveries")
	return cmd
}

func newIngestCommand(c *common) *cobra.Command {
	cfg := loadgen.DefaultIngestConfig()
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Publishers write pre-signed packs into one room as fast as the server acknowledges",
		Long: "ingest connects --publishers publishers to one room; each sends packs of --pack-size\n" +
			"pre-signed nodes with at most --window unacknowledged. After --warmup it measures for\n" +
			"--duration: accepted nodes/s (from pack-ack counts) and pack-ack latency.",
		Example: "  nodalmerge-bench ingest --publishers 4 --pack-size 16 --server-pid $(pgrep -n nodalmerge)\n\n" +
			"  # one node per pack, strictly sequential\n" +
			"  nodalmerge-bench ingest --publishers 1 --pack-size 1 --window 1",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validateJSONPath(); err != nil {
				return err
			}
			cfg.Target = c.target()
			res, err := loadgen.RunIngest(cmd.Context(), cfg)
			if err != nil {
				return flagError(err, map[string]string{
					"Publishers": "--publishers", "PackSize": "--pack-size", "Window": "--window",
					"PayloadBytes": "--payload", "Warmup": "--warmup", "Duration": "--duration",
					"Presign": "--presign", "Drain": "--drain",
				})
			}
			return c.finish(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "concurrent publishers (one session each)")
	f.IntVar(&cfg.PackSize, "pack-size", cfg.PackSize, "nodes per pack")
	f.IntVar(&cfg.Window, "window", cfg.Window, "packs a publisher may have unacknowledged (1 = send after each ack)")
	f.IntVar(&cfg.PayloadBytes, "payload", cfg.PayloadBytes, "bytes of the MapSet value in each node (at least 16)")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time publishing before measuring")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time")
	f.IntVar(&cfg.Presign, "presign", 0, "nodes to sign per publisher before the run (0 = 30000 nodes/s shared by the publishers × warm-up+duration)")
	f.DurationVar(&cfg.Drain, "drain", 10*time.Second, "after the window, how long to wait for the last acks")
	return cmd
}

func newJoinstormCommand(c *common) *cobra.Command {
	cfg := loadgen.DefaultJoinstormConfig()
	var conn adminFlags
	cmd := &cobra.Command{
		Use:   "joinstorm",
		Short: "Concurrent dialers open sessions (hello → welcome) as fast as possible",
		Long: "joinstorm runs --concurrency dialers for --duration; each opens a session (TCP, upgrade,\n" +
			"hello, welcome) to one of --rooms rooms and closes it after the welcome, or with --hold keeps\n" +
			"it open to measure the server's memory per idle connection (needs --server-pid).\n" +
			"Reports handshakes/s and handshake latency.\n\n" +
			"--locked measures admission to locked rooms: before the storm the tool sets a room key on\n" +
			"every room (RoomService.SetRoomKey) and locks it (LockRoom, mode own-keys) through the admin\n" +
			"API (--admin and the operator flags, as for admin-writes; the token needs room.admin), then\n" +
			"signs, offline, one token per dialer and room (per session with --hold, which then needs\n" +
			"--connections). Every hello carries its token, so each handshake includes the server's\n" +
			"signature check; the signing happens before the clock starts.",
		Example: "  nodalmerge-bench joinstorm --concurrency 32 --duration 5s\n\n" +
			"  # memory per idle connection: 10000 sessions over 100 rooms\n" +
			"  nodalmerge-bench joinstorm --hold --connections 10000 --rooms 100 --duration 60s --server-pid $(pgrep -n nodalmerge)\n\n" +
			"  # the same storm into locked rooms (operator material from ./.nodalmerge)\n" +
			"  nodalmerge-bench joinstorm --locked --concurrency 32 --duration 5s --server-pid $(pgrep -n nodalmerge)",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validateJSONPath(); err != nil {
				return err
			}
			cfg.Target = c.target()
			if cfg.Locked {
				if err := conn.load(cmd.Flags(), &cfg.Admin); err != nil {
					return err
				}
			}
			res, err := loadgen.RunJoinstorm(cmd.Context(), cfg)
			if err != nil {
				return flagError(err, withAdminTarget(map[string]string{
					"Rooms": "--rooms", "Concurrency": "--concurrency", "Duration": "--duration",
					"MaxConnections": "--connections", "RoomKeySeed": "--room-key-seed",
				}))
			}
			return c.finish(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "rooms to spread the sessions over (round robin)")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent dialers")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to keep dialing")
	f.BoolVar(&cfg.Hold, "hold", false, "keep every session open until the end (memory per idle connection)")
	f.IntVar(&cfg.MaxConnections, "connections", 0, "with --hold: stop dialing after this many open sessions (0 = until --duration)")
	f.BoolVar(&cfg.Locked, "locked", false, "lock the rooms to a room key first (admin API) and send a pre-signed token in every hello")
	f.StringVar(&cfg.RoomKeySeed, roomKeySeedFlag, "", roomKeySeedHelp)
	conn.register(f, "with --locked: admin gRPC address host:port that sets the room keys and locks")
	return cmd
}

// The room key seed flag of the locked-room scenarios.
const (
	roomKeySeedFlag = "room-key-seed"
	roomKeySeedHelp = "hex of the room key's 32-byte Ed25519 seed, to sign tokens with a known key (default: a fresh key); visible in the process list"
)

// withAdminTarget adds the admin connection's fields to a field → flag map.
func withAdminTarget(fields map[string]string) map[string]string {
	for k, v := range adminTargetFields {
		fields[k] = v
	}
	return fields
}
