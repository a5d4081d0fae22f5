package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/internal/grpccode"
	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// adminServer is a running `nodalmerge serve` as an operator sees it.
type adminServer struct {
	ws    string // WebSocket base URL, ws://host:port
	addr  string // admin gRPC address
	pid   int
	tls   *tls.Config
	token string // the bootstrap operator token (all capabilities)
}

var (
	adminLine = regexp.MustCompile(`admin gRPC\s+(\S+) \(mutual TLS\)`)
	stateLine = regexp.MustCompile(`state folder\s+(\S+)`)
)

// nodeBanner is what a started node printed: its addresses and state
// folder, and its process id.
type nodeBanner struct {
	ws, admin, state string
	pid              int
}

// launchNode runs `nodalmerge serve` (the binary TestMain built) in dir on
// kernel-picked loopback ports with extra flags, and reads its banner
// (printed once it serves; for a joiner, once its join is committed). It
// is stopped when the test ends (or may be killed sooner by the test).
func launchNode(t *testing.T, dir string, extra ...string) nodeBanner {
	t.Helper()
	args := append([]string{"serve",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0",
		"--log-level", "warn"}, server.args...)
	cmd := exec.Command(server.bin, append(args, extra...)...)
	cmd.Dir = dir
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nodalmerge: %v", err)
	}
	done := make(chan error, 1)
	banner := make(chan nodeBanner, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var b nodeBanner
		for sc.Scan() {
			if m := wsLine.FindStringSubmatch(sc.Text()); m != nil {
				b.ws = m[1]
			}
			if m := adminLine.FindStringSubmatch(sc.Text()); m != nil {
				b.admin = m[1]
			}
			if m := stateLine.FindStringSubmatch(sc.Text()); m != nil {
				b.state = m[1]
			}
			if b.ws != "" && b.admin != "" && b.state != "" {
				banner <- b
				b = nodeBanner{}
			}
		}
		done <- cmd.Wait() // after stdout is drained, as exec requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fails harmlessly if it was killed
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("nodalmerge did not stop within 20 s of SIGTERM")
		}
	})
	select {
	case b := <-banner:
		b.pid = cmd.Process.Pid
		return b
	case err := <-done:
		done <- err
		t.Fatalf("nodalmerge exited before its banner: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner within 60 s\n%s", stderr.String())
	}
	return nodeBanner{}
}

// startAdminServer runs one node with its development defaults, like
// startServer; the operator material is what the node wrote into its
// state folder.
func startAdminServer(t *testing.T) adminServer {
	t.Helper()
	b := launchNode(t, t.TempDir())
	cert, key := pki.ClientFiles(pki.DevOperatorName)
	m, err := pki.Load(filepath.Join(b.state, "tls", pki.CAFile), filepath.Join(b.state, "tls", cert), filepath.Join(b.state, "tls", key))
	if err != nil {
		t.Fatalf("operator TLS material the node wrote: %v", err)
	}
	tok, err := os.ReadFile(filepath.Join(b.state, "bootstrap-operator.token"))
	if err != nil {
		t.Fatalf("bootstrap token the node wrote: %v", err)
	}
	return adminServer{ws: b.ws, addr: b.admin, pid: b.pid, tls: m.ClientConfig(""), token: strings.TrimSpace(string(tok))}
}

// config is a short run against s.
func (s adminServer) config() AdminConfig {
	cfg := DefaultAdminConfig()
	cfg.Addrs, cfg.TLS, cfg.Token, cfg.ServerPID = []string{s.addr}, s.tls, s.token, s.pid
	cfg.Warmup, cfg.Duration = 200*time.Millisecond, 700*time.Millisecond
	return cfg
}

// client is an operator connection of the test's own, to check what a
// run did.
func (s adminServer) client(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(s.tls)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func (s adminServer) ctx(t *testing.T) context.Context {
	return metadata.AppendToOutgoingContext(testCtx(t), "authorization", "Bearer "+s.token)
}

// timelines answers the policy timeline length of each of client c's
// rooms, up to the first room it never wrote.
func timelines(t *testing.T, s adminServer, policy adminv1.PolicyServiceClient, prefix string, c int) []int {
	t.Helper()
	var out []int
	for n := 0; ; n++ {
		resp, err := policy.GetPolicy(s.ctx(t), &adminv1.GetPolicyRequest{Room: adminRoom(prefix, c, n)})
		if err != nil {
			t.Fatalf("GetPolicy: %v", err)
		}
		if len(resp.GetTimeline()) == 0 {
			return out
		}
		out = append(out, len(resp.GetTimeline()))
	}
}

func checkAdminResult(t *testing.T, res *AdminResult, pid int) {
	t.Helper()
	if res.Failed() || len(res.Errors) > 0 || len(res.ErrorsByCode) > 0 || res.Ops == 0 {
		t.Fatalf("ops %d, errors %v", res.Ops, res.Errors)
	}
	checkLatency(t, "call", res.Latency)
	if res.Latency.Count != res.Ops {
		t.Errorf("%d latencies for %d calls", res.Latency.Count, res.Ops)
	}
	if res.WindowSeconds < 0.6 || res.WindowSeconds > 3 {
		t.Errorf("window %.2f s, want about 0.7", res.WindowSeconds)
	}
	if got := float64(res.Ops) / res.WindowSeconds; got != res.OpsPerSec {
		t.Errorf("ops/s %.1f, computed %.1f", res.OpsPerSec, got)
	}
	if s := res.Server; s == nil || s.PID != pid || s.RSSAfterBytes <= 0 || s.CPUSeconds <= 0 || s.CPUMicrosPerOp <= 0 {
		t.Errorf("server usage %+v", s)
	}
}

func TestAdminAgainstServer(t *testing.T) {
	s := startAdminServer(t)
	policy := adminv1.NewPolicyServiceClient(s.client(t))

	t.Run("writes", func(t *testing.T) {
		cfg := s.config()
		cfg.Clients, cfg.ClientsPerConn, cfg.RoomWrites = 5, 2, 7
		res, err := RunAdminWrites(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkAdminResult(t, res, s.pid)
		c := res.Config
		if res.Scenario != "admin-writes" || c.Command != "set-policy" || c.Connections != 3 || c.Clients != 5 || c.Consistency != "" || res.PerAddress != nil {
			t.Fatalf("result %+v", res)
		}
		// The writes are in the replicated state: each client filled
		// rooms of 7 entries, then moved on, and wrote at least what the
		// window counted plus its setup call.
		total := 0
		for client := range 5 {
			tl := timelines(t, s, policy, c.RoomPrefix, client)
			if len(tl) == 0 {
				t.Fatalf("client %d wrote nothing", client)
			}
			for i, n := range tl {
				if i < len(tl)-1 && n != 7 || n < 1 || n > 7 {
					t.Fatalf("client %d timelines %v, want full rooms of 7", client, tl)
				}
				total += n
			}
		}
		if uint64(total) < res.Ops+5 {
			t.Errorf("%d entries in the state, fewer than the %d calls counted + 5 setup", total, res.Ops)
		}
		checkJSON(t, res, "scenario", "ops_per_sec", "latency", "errors_by_code", "server", "config")
	})

	t.Run("reads", func(t *testing.T) {
		for _, tc := range []struct {
			read              AdminRead
			stale             bool
			command, consists string
		}{
			{AdminReadPolicy, false, "get-policy", "linearizable"},
			{AdminReadPolicy, true, "get-policy", "stale"},
			{AdminReadStatus, false, "cluster.status", "node-local"},
		} {
			cfg := s.config()
			cfg.Clients, cfg.Read, cfg.Stale = 3, tc.read, tc.stale
			res, err := RunAdminReads(testCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkAdminResult(t, res, s.pid)
			if res.Scenario != "admin-reads" || res.Config.Command != tc.command || res.Config.Consistency != tc.consists || res.Config.Connections != 1 {
				t.Fatalf("config %+v", res.Config)
			}
			// A policy read answers the one entry setup wrote.
			if tc.read == AdminReadPolicy {
				if tl := timelines(t, s, policy, res.Config.RoomPrefix, 2); len(tl) != 1 || tl[0] != 1 {
					t.Errorf("client 2's rooms: %v, want one room of one entry", tl)
				}
			}
		}
	})

	t.Run("spread over addresses", func(t *testing.T) {
		// Two spellings of one node stand for two nodes: the clients
		// split 2 + 1 and each address gets its own figures.
		_, port, _ := strings.Cut(s.addr, ":")
		cfg := s.config()
		cfg.Addrs = []string{s.addr, "localhost:" + port}
		cfg.Clients, cfg.ClientsPerConn = 3, 1
		res, err := RunAdminWrites(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkAdminResult(t, res, s.pid)
		pa := res.PerAddress
		if len(pa) != 2 || pa[0].Clients != 2 || pa[1].Clients != 1 || pa[0].Ops+pa[1].Ops != res.Ops || pa[0].Ops == 0 || pa[1].Ops == 0 {
			t.Fatalf("per address %+v", pa)
		}
		if res.Config.Connections != 3 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "one of the nodes") {
			t.Errorf("connections %d, warnings %v", res.Config.Connections, res.Warnings)
		}
	})

	t.Run("setup errors carry the server's reason", func(t *testing.T) {
		// A least-privilege token, minted the way an operator would.
		mint, err := adminv1.NewTokenServiceClient(s.client(t)).MintOperatorToken(s.ctx(t), &adminv1.MintOperatorTokenRequest{
			Subject: "bench-reader", Caps: []string{"cluster.read"}, Ttl: durationpb.New(10 * time.Minute)})
		if err != nil {
			t.Fatalf("MintOperatorToken: %v", err)
		}
		for _, tc := range []struct {
			token string
			read  AdminRead
			want  []string
		}{
			{mint.GetToken(), "", []string{"first set-policy call", "PERMISSION_DENIED", "requires=policy.admin"}},
			{"not-a-jwt", AdminReadStatus, []string{"first cluster.status call", "UNAUTHENTICATED"}},
		} {
			cfg := s.config()
			cfg.Token, cfg.Read = tc.token, tc.read
			var err error
			if tc.read == "" {
				_, err = RunAdminWrites(testCtx(t), cfg)
			} else {
				_, err = RunAdminReads(testCtx(t), cfg)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to contain %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error contains the token: %v", err)
			}
		}
		// The reader's token is enough for status reads.
		cfg := s.config()
		cfg.Token, cfg.Read = mint.GetToken(), AdminReadStatus
		res, err := RunAdminReads(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkAdminResult(t, res, s.pid)
	})
}

// measuringSignal is a slog handler that closes ch when a run logs that
// its window opened.
type measuringSignal struct {
	once sync.Once
	ch   chan struct{}
}

func (h *measuringSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *measuringSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "measuring" {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}
func (h *measuringSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *measuringSignal) WithGroup(string) slog.Handler      { return h }

// TestAdminServerKilled kills the node inside the window: the calls that
// fail are counted by code, the run is reported failed, and it still ends
// on time.
func TestAdminServerKilled(t *testing.T) {
	s := startAdminServer(t)
	sig := &measuringSignal{ch: make(chan struct{})}
	cfg := s.config()
	cfg.ServerPID = 0 // the process is gone when the window ends
	cfg.Clients, cfg.Duration, cfg.Timeout = 4, 1500*time.Millisecond, 2*time.Second
	cfg.Logger = slog.New(sig)
	type outcome struct {
		res *AdminResult
		err error
	}
	out := make(chan outcome, 1)
	go func() {
		res, err := RunAdminWrites(testCtx(t), cfg)
		out <- outcome{res, err}
	}()
	select {
	case <-sig.ch:
	case o := <-out:
		t.Fatalf("run ended before its window: %+v %v", o.res, o.err)
	}
	if err := syscall.Kill(s.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	o := <-out
	if o.err != nil {
		t.Fatal(o.err)
	}
	res := o.res
	if !res.Failed() || res.ErrorsByCode["UNAVAILABLE"] == 0 || len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "UNAVAILABLE") {
		t.Fatalf("errors %v by code %v", res.Errors, res.ErrorsByCode)
	}
	if res.WindowSeconds > 3 {
		t.Errorf("window %.2f s for a 1.5 s run", res.WindowSeconds)
	}
}

func TestAdminConfigErrors(t *testing.T) {
	good := DefaultAdminConfig()
	good.TLS, good.Token = &tls.Config{}, "t"
	for _, tc := range []struct {
		reads bool
		field string
		edit  func(*AdminConfig)
	}{
		{false, "Addrs", func(c *AdminConfig) { c.Addrs = nil }},
		{false, "Addrs", func(c *AdminConfig) { c.Addrs = []string{"127.0.0.1"} }},
		{false, "TLS", func(c *AdminConfig) { c.TLS = nil }},
		{false, "Token", func(c *AdminConfig) { c.Token = " " }},
		{false, "Clients", func(c *AdminConfig) { c.Clients = 0 }},
		{false, "ClientsPerConn", func(c *AdminConfig) { c.ClientsPerConn = 0 }},
		{false, "Warmup", func(c *AdminConfig) { c.Warmup = -time.Second }},
		{false, "Duration", func(c *AdminConfig) { c.Duration = 0 }},
		{false, "Timeout", func(c *AdminConfig) { c.Timeout = 0 }},
		{false, "ServerPID", func(c *AdminConfig) { c.ServerPID = -1 }},
		{false, "RoomPrefix", func(c *AdminConfig) { c.RoomPrefix = "a/b" }},
		{false, "RoomPrefix", func(c *AdminConfig) { c.RoomPrefix = strings.Repeat("r", 120) }},
		{false, "RoomWrites", func(c *AdminConfig) { c.RoomWrites = 0 }},
		{false, "Stale", func(c *AdminConfig) { c.Stale = true }},
		{true, "Read", func(c *AdminConfig) { c.Read = "keys" }},
		{true, "Stale", func(c *AdminConfig) { c.Read, c.Stale = AdminReadStatus, true }},
	} {
		cfg := good
		tc.edit(&cfg)
		run := RunAdminWrites
		if tc.reads {
			run = RunAdminReads
		}
		_, err := run(testCtx(t), cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: error %v, want a ConfigError for it", tc.field, err)
		}
	}
	// Reads ignore RoomWrites; writes ignore Read.
	cfg := good
	cfg.RoomWrites, cfg.Read = 0, "ignored"
	if err := cfg.validate(adminReads); err == nil || !strings.Contains(err.Error(), "Read") {
		t.Errorf("reads: %v", err)
	}
	cfg.Read = AdminReadPolicy
	if err := cfg.validate(adminReads); err != nil {
		t.Errorf("reads with RoomWrites 0: %v", err)
	}
}

func TestAdminErrorsByCode(t *testing.T) {
	a, b := newAdminErrors(), newAdminErrors()
	a.add(errors.New("plain")) // not a status: UNKNOWN
	a.add(status.Error(codes.Unavailable, "no leader"))
	b.add(status.Error(codes.Unavailable, "later"))
	b.add(status.Error(codes.PermissionDenied, "reject.control_plane_forbidden: command=set-policy requires=policy.admin"))
	a.merge(b)
	want := []string{
		"1× PERMISSION_DENIED: reject.control_plane_forbidden: command=set-policy requires=policy.admin",
		"2× UNAVAILABLE: no leader",
		"1× UNKNOWN: plain",
	}
	if got := a.list(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("list:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if grpccode.Name(99) != "CODE(99)" || grpccode.Name(1) != "CANCELLED" || grpccode.Name(0) != "OK" {
		t.Error("code names")
	}
}
