package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nodalmerge/nodalmerge-go/node"
)

// shutdownTimeout bounds the graceful drain on SIGTERM.
const shutdownTimeout = 20 * time.Second

func newServeCommand() *cobra.Command {
	var (
		cfg         node.Config
		logLevel    string
		logFormat   string
		idleSeconds int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one node: data plane, control plane and Raft member",
		Long: "Run one node. With no flags it is a working single-node cluster: Raft bootstraps by itself,\n" +
			"rooms are kept in memory, and dev TLS material and a bootstrap operator token are written to\n" +
			"./.nodalmerge (0700). --store DIR makes everything durable in DIR.\n\n" +
			"Every flag can also be set as NODALMERGE_<FLAG> (e.g. NODALMERGE_ADMIN_LISTEN); --listen also\n" +
			"reads NODALMERGE_BIND_ADDR, then AS_BIND_ADDR.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			if idleSeconds < 1 {
				return fmt.Errorf("--idle-timeout %d: must be at least 1 second", idleSeconds)
			}
			if cfg.KeyRotationGrace == 0 {
				// node.Config reads 0 as the default; from the flag it is a mistake.
				return fmt.Errorf("--key-rotation-grace 0s: must be positive: a replaced key must keep verifying the tokens it signed")
			}
			cfg.IdleTimeout = time.Duration(idleSeconds) * time.Second
			cfg.Logger = logger
			cfg.Banner = cmd.OutOrStdout()
			return runServe(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.StoreDir, "store", "", "folder for durable state (Raft log and snapshots, keyring, TLS material); empty keeps state in memory")
	f.StringVar(&cfg.NodeID, "node-id", "", "stable node id (default: derived once and kept in the state folder)")
	f.StringVar(&cfg.Listen, "listen", node.DefaultListen, "public WebSocket listener (rooms at /ws/{room})")
	f.StringVar(&cfg.AdminListen, "admin-listen", node.DefaultAdminListen, "internal gRPC admin listener (mutual TLS)")
	f.StringVar(&cfg.RaftListen, "raft-listen", node.DefaultRaftListen, "internal Raft listener (mutual TLS)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "listener for /metrics, /healthz and /readyz (default: off)")
	f.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on --metrics-addr (diagnostics)")
	f.StringVar(&cfg.AdvertiseListen, "advertise-listen", "", "public address advertised to other nodes (default: the bound address)")
	f.StringVar(&cfg.AdvertiseAdminListen, "advertise-admin-listen", "", "admin address advertised to other nodes (default: the bound address)")
	f.StringVar(&cfg.AdvertiseRaftListen, "advertise-raft-listen", "", "Raft address advertised to other nodes (default: the bound address)")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "form a new cluster (implied for a lone node without state; ignored on a store that already has one)")
	f.StringSliceVar(&cfg.Join, "join", nil, "admin address(es) of cluster members to join through (host:port[,host:port]); the node proves itself with its node certificate")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "cluster CA bundle (PEM) for both internal listeners; replaces the generated material")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "this node's certificate (PEM, made by 'nodalmerge cert create-node')")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "this node's private key (PEM)")
	f.StringVar(&cfg.WSTLSCert, "ws-tls-cert", "", "certificate (PEM, chain after the leaf) for wss:// on --listen; with --ws-tls-key")
	f.StringVar(&cfg.WSTLSKey, "ws-tls-key", "", "private key (PEM) of --ws-tls-cert")
	f.DurationVar(&cfg.TLSReloadInterval, "tls-reload-interval", node.DefaultTLSReloadInterval, "how often certificate files (--tls-*, --ws-tls-*) are checked for renewal and reloaded without restart (0 = off)")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", nil, "CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed (default: none)")
	f.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", node.DefaultHandshakeTimeout, "time a WebSocket client has to send hello")
	f.Int64Var(&cfg.MaxFrameBytes, "max-frame-bytes", node.DefaultMaxFrameBytes, "largest WebSocket frame accepted (larger: close 1009)")
	f.IntVar(&cfg.BroadcastCapacity, "broadcast-capacity", node.DefaultBroadcastCapacity, "per-session send buffer; a peer that falls further behind is closed with 4001")
	f.IntVar(&cfg.PeerRateNodes, "peer-rate-nodes", node.DefaultPeerRateNodes, "nodes per second one peer may send into a room (0 = off); over it: close 4008")
	f.IntVar(&cfg.PeerRateMiB, "peer-rate-bytes", node.DefaultPeerRateMiB, "MiB per second of decoded pack data one peer may send into a room (0 = off); over it: close 4008")
	f.IntVar(&idleSeconds, "idle-timeout", int(node.DefaultIdleTimeout/time.Second), "seconds before a room with no peers is unloaded from memory")
	f.IntVar(&cfg.MaxConnections, "max-connections", node.DefaultMaxConnections, "concurrent WebSocket connections (0 = no cap); over it upgrades get 503 with Retry-After")
	f.StringSliceVar(&cfg.AllowedOrigins, "allowed-origins", nil, "browser origins allowed to connect cross-origin (default: none)")
	f.StringVar(&cfg.KEKFile, "kek-file", "", "key-encryption key (64 hex digits, mode 0600; 'nodalmerge kek create') sealing keyring seeds at rest (default: none)")
	f.DurationVar(&cfg.KeyRotationInterval, "key-rotation-interval", 0, "rotate each keyring purpose automatically once its newest key is this old; the leader does it (0 = off)")
	f.DurationVar(&cfg.KeyRotationPrepublish, "key-rotation-prepublish", 0, "how long an automatically rotated key is published before it signs")
	f.DurationVar(&cfg.KeyRotationGrace, "key-rotation-grace", node.DefaultKeyRotationGrace, "how long a key replaced by automatic rotation keeps verifying")
	f.BoolVar(&cfg.RecoverOperatorToken, "recover-operator-token", false, "write a fresh bootstrap operator token to the state folder (audited break-glass)")
	f.DurationVar(&cfg.BootstrapTokenTTL, "bootstrap-token-ttl", node.DefaultBootstrapTokenTTL, "lifetime of the bootstrap operator token")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func runServe(ctx context.Context, cfg node.Config) error {
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down", "reason", "signal")
	case runErr = <-n.Err():
		cfg.Logger.Error("shutting down", "reason", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.Stop(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	cfg.Logger.Info("stopped")
	return runErr
}

// applyEnv sets every flag the command line left unset from its
// NODALMERGE_<FLAG> variable, naming the variable when its value is bad.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		names := []string{"NODALMERGE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}
		if f.Name == "listen" {
			names = append(names, "NODALMERGE_BIND_ADDR", "AS_BIND_ADDR")
		}
		for _, name := range names {
			if v, ok := os.LookupEnv(name); ok && v != "" {
				if serr := fs.Set(f.Name, v); serr != nil {
					err = fmt.Errorf("%s=%q (for --%s): %w", name, v, f.Name, serr)
				}
				return
			}
		}
	})
	return err
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}
