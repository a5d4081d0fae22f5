package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run executes the command line in-process and returns stdout, stderr and
// the error main would print.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestHelpDocumentsFlagsAndExamples(t *testing.T) {
	for cmd, want := range map[string][]string{
		"fanout":    {"--subscribers", "--publishers", "--rate", "--window", "--payload", "--warmup", "--duration", "--samples", "--presign", "--server-pid", "--json", "Examples:", "Centrifugo"},
		"ingest":    {"--publishers", "--pack-size", "--window", "Examples:"},
		"joinstorm": {"--concurrency", "--hold", "--connections", "--rooms", "Examples:", "--locked", "--room-key-seed", "--admin", "--token-file", "own-keys"},
		"revoke":    {"--url", "--sessions", "--peers", "--by", "--rounds", "--close-timeout", "--room-key-seed", "--admin", "--tls-ca", "TokenService.Revoke", "4003", "Examples:", "three-node.sh security"},
	} {
		out, _, err := run(t, cmd, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}
	out, _, _ := run(t, "--help")
	if !strings.Contains(out, "--peer-rate-nodes 0") {
		t.Errorf("root help does not say how to start the server for benchmarks:\n%s", out)
	}
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fanout", "--subscribers", "0"}, "invalid --subscribers: must be at least 1"},
		{[]string{"fanout", "--payload", "4"}, "invalid --payload: must be at least 16"},
		{[]string{"fanout", "--rate", "-1"}, "invalid --rate"},
		{[]string{"fanout", "--duration", "0s"}, "invalid --duration: must be positive"},
		{[]string{"ingest", "--pack-size", "0"}, "invalid --pack-size"},
		{[]string{"ingest", "--url", "http://127.0.0.1:7878"}, "invalid --url: must be ws://"},
		{[]string{"joinstorm", "--connections", "5"}, "invalid --connections"},
		{[]string{"joinstorm", "--room-prefix", "a b"}, "invalid --room-prefix"},
		{[]string{"joinstorm", "--server-pid", "-3"}, "invalid --server-pid"},
		{[]string{"joinstorm", "--json", "/nonexistent-dir/x.json"}, "invalid --json"},
		{[]string{"joinstorm", "extra"}, "takes no arguments"},
		{[]string{"fanout", "--window", "many"}, `invalid argument "many" for "--window"`},
		{[]string{"fanout", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"fanout", "--url", "ws://a:1,ws://b:2"}, "invalid --url"},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
}

// TestFailedRunStillWritesJSON runs a real join storm against a port
// nothing listens on: the table and the JSON report the failures, and the
// command fails.
func TestFailedRunStillWritesJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	out, _, err := run(t, "joinstorm", "-q", "--url", "ws://127.0.0.1:1", "--duration", "200ms", "--concurrency", "2", "--json", path)
	if err == nil || !strings.Contains(err.Error(), "the run had errors") {
		t.Fatalf("error %v, want the run reported as failed", err)
	}
	if !strings.Contains(out, "handshakes") || !strings.Contains(out, "error") {
		t.Errorf("table:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenario   string   `json:"scenario"`
		Handshakes uint64   `json:"handshakes"`
		Failures   uint64   `json:"failures"`
		Errors     []string `json:"errors"`
		Config     struct {
			Concurrency int `json:"concurrency"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, b)
	}
	if res.Scenario != "joinstorm" || res.Handshakes != 0 || res.Failures == 0 || len(res.Errors) == 0 || res.Config.Concurrency != 2 {
		t.Fatalf("JSON %s", b)
	}
}
