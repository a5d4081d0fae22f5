package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nodalmerge/nodalmerge-go/loadgen"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// envToken names the variable holding the calling operator token, as for
// `nodalmerge admin`.
const envToken = "NODALMERGE_TOKEN"

// adminFlags are the connection flags of the admin scenarios. They mirror
// `nodalmerge admin`'s: file flags left empty default to what a bare
// `nodalmerge serve` writes into --state-dir.
type adminFlags struct {
	addrs                  []string
	stateDir               string
	tlsCA, tlsCert, tlsKey string
	token, tokenFile       string
}

// register adds the flags; addrHelp says what the scenario does with the
// --admin addresses.
func (a *adminFlags) register(f *pflag.FlagSet, addrHelp string) {
	f.StringSliceVar(&a.addrs, "admin", []string{loadgen.DefaultAdminAddr}, addrHelp)
	f.StringVar(&a.stateDir, "state-dir", ".nodalmerge", "state folder whose TLS material and bootstrap token are the defaults below")
	f.StringVar(&a.tlsCA, "tls-ca", "", "cluster CA bundle (default STATE-DIR/tls/ca.pem)")
	f.StringVar(&a.tlsCert, "tls-cert", "", "operator client certificate (default STATE-DIR/tls/operator.pem)")
	f.StringVar(&a.tlsKey, "tls-key", "", "operator client key (default STATE-DIR/tls/operator-key.pem)")
	f.StringVar(&a.tokenFile, "token-file", "", "file holding the operator token (default STATE-DIR/bootstrap-operator.token)")
	f.StringVar(&a.token, "token", "", "the operator token itself; visible in the process list, so prefer "+envToken+" or --token-file")
}

// load fills cfg from the flags.
func (a *adminFlags) load(f *pflag.FlagSet, cfg *loadgen.AdminTarget) error {
	orState := func(v string, name ...string) string {
		if v != "" {
			return v
		}
		return filepath.Join(append([]string{a.stateDir}, name...)...)
	}
	cert, key := pki.ClientFiles(pki.DevOperatorName)
	m, err := pki.Load(orState(a.tlsCA, "tls", pki.CAFile), orState(a.tlsCert, "tls", cert), orState(a.tlsKey, "tls", key))
	if err != nil {
		return fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	tok, err := a.callerToken(f.Changed("token-file"), orState(a.tokenFile, "bootstrap-operator.token"))
	if err != nil {
		return err
	}
	cfg.Addrs, cfg.TLS, cfg.Token = a.addrs, m.ClientConfig(""), tok
	return nil
}

// callerToken answers the operator token: --token, else an explicit
// --token-file, else NODALMERGE_TOKEN, else the default token file (the
// order of `nodalmerge admin`). Errors name the flag, never the token.
func (a *adminFlags) callerToken(fileGiven bool, path string) (string, error) {
	if tok := strings.TrimSpace(a.token); tok != "" {
		return tok, nil
	}
	if !fileGiven {
		if tok := strings.TrimSpace(os.Getenv(envToken)); tok != "" {
			return tok, nil
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: read the operator token: %w (or set --token or %s)", err, envToken)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s: file is empty", path)
	}
	return tok, nil
}

// adminTargetFields maps AdminTarget's fields to the flags of adminFlags.
var adminTargetFields = map[string]string{"Addrs": "--admin", "TLS": "--tls-cert", "Token": "--token"}

// adminFields maps AdminConfig's fields to flags.
var adminFields = map[string]string{
	"Addrs": "--admin", "TLS": "--tls-cert", "Token": "--token", "Clients": "--clients",
	"ClientsPerConn": "--clients-per-conn", "Warmup": "--warmup", "Duration": "--duration",
	"Timeout": "--timeout", "RoomWrites": "--room-writes", "Read": "--read", "Stale": "--stale",
}

// newAdminCommand builds admin-writes (reads false) or admin-reads.
func newAdminCommand(c *common, reads bool) *cobra.Command {
	cfg := loadgen.DefaultAdminConfig()
	var conn adminFlags
	var read string
	run := loadgen.RunAdminWrites
	cmd := &cobra.Command{
		Use:   "admin-writes",
		Short: "Clients call PolicyService.SetPolicy back to back: replicated writes through the admin API",
		Long: "admin-writes runs --clients clients, each calling PolicyService.SetPolicy (default allow, one\n" +
			"rule) on rooms of its own as fast as the answers come; every call is a Raft write, forwarded\n" +
			"to the leader when the address is a follower. Clients are spread round robin over --admin\n" +
			"addresses and share gRPC connections --clients-per-conn at a time. After --warmup it measures\n" +
			"for --duration: calls/s, latency and failed calls by gRPC code.\n\n" +
			"Each client moves to a fresh room every --room-writes calls: SetPolicy appends to the room's\n" +
			"policy timeline, and a long timeline makes each write dearer.",
		Example: "  # one sequential writer, then 64 concurrent, on the node started in this folder\n" +
			"  nodalmerge-bench admin-writes --server-pid $(pgrep -n nodalmerge)\n" +
			"  nodalmerge-bench admin-writes --clients 64 --duration 10s --json writes.json\n\n" +
			"  # 64 clients spread over three nodes (writes to followers are forwarded)\n" +
			"  nodalmerge-bench admin-writes --clients 64 --admin 127.0.0.1:7879,127.0.0.1:7979,127.0.0.1:8079 \\\n" +
			"    --tls-ca ca/ca.pem --tls-cert ops/alice.pem --tls-key ops/alice-key.pem --token-file d1/bootstrap-operator.token",
	}
	if reads {
		run = loadgen.RunAdminReads
		cmd.Use = "admin-reads"
		cmd.Short = "Clients call PolicyService.GetPolicy (or ClusterService.GetStatus) back to back"
		cmd.Long = "admin-reads runs --clients clients, each calling PolicyService.GetPolicy on a room it set\n" +
			"one policy entry on before the run (a room-scoped read gated on policy.admin), or with\n" +
			"--read status ClusterService.GetStatus (cluster.read, answered by the node called). Policy\n" +
			"reads are linearizable (the leader confirms its lease with a quorum; followers forward);\n" +
			"--stale sends nodalmerge-consistency: stale and the node called answers from its own state.\n" +
			"After --warmup it measures for --duration: calls/s, latency and failed calls by gRPC code."
		cmd.Example = "  nodalmerge-bench admin-reads --clients 8 --server-pid $(pgrep -n nodalmerge)\n" +
			"  nodalmerge-bench admin-reads --clients 64 --stale\n" +
			"  nodalmerge-bench admin-reads --read status --clients 16 --duration 5s --json status.json"
	}
	cmd.Args = noArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := c.validateJSONPath(); err != nil {
			return err
		}
		if err := conn.load(cmd.Flags(), &cfg.AdminTarget); err != nil {
			return err
		}
		cfg.Read = loadgen.AdminRead(read)
		cfg.ServerPID, cfg.RoomPrefix = c.serverPID, c.roomPrefix
		cfg.Logger = c.target().Logger
		res, err := run(cmd.Context(), cfg)
		if err != nil {
			return flagError(err, adminFields)
		}
		return c.finish(res)
	}
	f := cmd.Flags()
	conn.register(f, "admin gRPC address(es) host:port[,host:port]; clients are spread over them round robin")
	f.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients, each calling back to back")
	f.IntVar(&cfg.ClientsPerConn, "clients-per-conn", cfg.ClientsPerConn, "clients sharing one gRPC connection (1 = a connection each)")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time calling before measuring")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "deadline of each call")
	if reads {
		f.StringVar(&read, "read", string(loadgen.AdminReadPolicy), "the call: policy (PolicyService.GetPolicy) or status (ClusterService.GetStatus)")
		f.BoolVar(&cfg.Stale, "stale", false, "send nodalmerge-consistency: stale (answer from the called node's state, no leader round trip)")
	} else {
		f.IntVar(&cfg.RoomWrites, "room-writes", cfg.RoomWrites, "SetPolicy calls a client makes on one room before moving to a fresh one")
	}
	return cmd
}
