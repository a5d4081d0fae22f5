package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/nodalmerge/nodalmerge-go/loadgen"
)

// common holds the flags every scenario shares.
type common struct {
	url        string
	serverPID  int
	jsonPath   string
	roomPrefix string
	quiet      bool
	stdout     io.Writer
	stderr     io.Writer
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	c := &common{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "nodalmerge-bench",
		Short: "Load generator for a running nodalmerge server",
		Long: "nodalmerge-bench drives a running `nodalmerge serve` through its public WebSocket\n" +
			"protocol (fanout, ingest, joinstorm, revoke) or its gRPC admin API (admin-writes, admin-reads)\n" +
			"and reports throughput and latency as a table (and as JSON with --json).\n\n" +
			"For the WebSocket scenarios start the server without per-peer rate limits, or\n" +
			"publishers are closed with 4008:\n" +
			"  nodalmerge serve --peer-rate-nodes 0 --peer-rate-bytes 0\n\n" +
			"The generator and the server share the machine: pass --server-pid to read the\n" +
			"server's CPU time and resident memory from /proc around the measured window.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&c.url, "url", "ws://127.0.0.1:7878", "server WebSocket base URL (rooms are at URL/ws/{room})")
	pf.IntVar(&c.serverPID, "server-pid", 0, "server process id on this machine: report its CPU and RSS from /proc (0 = off)")
	pf.StringVar(&c.jsonPath, "json", "", "also write the results as JSON to this file")
	pf.StringVar(&c.roomPrefix, "room-prefix", "bench", "room name prefix (a random run id follows, so every run uses fresh rooms)")
	pf.BoolVarP(&c.quiet, "quiet", "q", false, "no progress messages on stderr")
	root.AddCommand(newFanoutCommand(c), newIngestCommand(c), newJoinstormCommand(c))
	root.AddCommand(newAdminCommand(c, false), newAdminCommand(c, true), newRevokeCommand(c))
	return root
}

// target builds the shared part of every scenario's config.
func (c *common) target() loadgen.Target {
	level := slog.LevelInfo
	if c.quiet {
		level = slog.LevelError
	}
	return loadgen.Target{
		URL:        c.url,
		ServerPID:  c.serverPID,
		RoomPrefix: c.roomPrefix,
		Logger:     slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})),
	}
}

// commonFields maps Target's fields to the persistent flags.
var commonFields = map[string]string{"URL": "--url", "ServerPID": "--server-pid", "RoomPrefix": "--room-prefix"}

// flagError rewrites a loadgen.ConfigError in terms of the flag that set
// the field, using fields (field name → flag) and the common flags.
func flagError(err error, fields map[string]string) error {
	var ce *loadgen.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	name, ok := fields[ce.Field]
	if !ok {
		name = commonFields[ce.Field]
	}
	if name == "" {
		return err
	}
	return fmt.Errorf("invalid %s: %s", name, ce.Msg)
}

// finish prints the report, writes the JSON file, and turns a run with
// errors into a non-zero exit.
func (c *common) finish(r loadgen.Report) error {
	if err := r.WriteTable(c.stdout); err != nil {
		return err
	}
	if c.jsonPath != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON results: %w", err)
		}
		if err := os.WriteFile(c.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --json file: %w", err)
		}
	}
	if r.Failed() {
		return errors.New("the run had errors (listed above); its figures are suspect")
	}
	return nil
}

// noArgs rejects positional arguments with a message naming them.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (options are flags: see --help)", cmd.CommandPath(), args)
	}
	return nil
}

// validateJSONPath fails early, before a long run, when --json cannot be
// written.
func (c *common) validateJSONPath() error {
	if c.jsonPath == "" {
		return nil
	}
	f, err := os.OpenFile(c.jsonPath, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("invalid --json: %w", err)
	}
	return f.Close()
}
