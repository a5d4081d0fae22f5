package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
)

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// server is one running `nodalmerge serve` process.
type server struct {
	cmd     *exec.Cmd
	dir     string // working directory
	stderr  *syncbuf.Buffer
	banner  []string
	wsURL   string // ws://host:port/ws/
	admin   string
	grpcurl string // the banner's grpcurl command line
	done    chan struct{}
	waitErr error
}

var (
	wsLine      = regexp.MustCompile(`WebSocket rooms\s+(ws://\S+)/ws/\{room\}`)
	adminLine   = regexp.MustCompile(`admin gRPC\s+(\S+)`)
	grpcurlLine = regexp.MustCompile(`^\s+(grpcurl .*)$`)
)

// spawnServe starts the process and returns its stdout lines: the start
// half of startServer, which fails the test on error and so cannot be
// called from the cluster harness's other goroutines.
func spawnServe(dir string, args ...string) (*server, <-chan string, error) {
	s := &server{dir: dir, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bins.nodalmerge, append([]string{"serve"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = cleanEnv()
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start nodalmerge: %w", err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	return s, lines, nil
}

// startServer runs the binary with args in dir and waits for its banner.
// The process is stopped (SIGTERM, then SIGKILL) when the test ends.
func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s, lines, err := spawnServe(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.kill(t) })

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for s.grpcurl == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.done
				t.Fatalf("nodalmerge exited before its banner (%v); stderr:\n%s", s.waitErr, s.stderr.String())
			}
			s.banner = append(s.banner, line)
			if m := wsLine.FindStringSubmatch(line); m != nil {
				s.wsURL = m[1] + "/ws/"
			}
			if m := adminLine.FindStringSubmatch(line); m != nil {
				s.admin = m[1]
			}
			if m := grpcurlLine.FindStringSubmatch(line); m != nil {
				s.grpcurl = m[1]
			}
		case <-timer.C:
			t.Fatalf("no banner within %s; stderr:\n%s", startTimeout, s.stderr.String())
		}
	}
	// Keep draining stdout so the process never blocks on a full pipe.
	go func() {
		for range lines {
		}
	}()
	if s.wsURL == "" || s.admin == "" {
		t.Fatalf("banner lacks the WebSocket URL or admin address:\n%s", strings.Join(s.banner, "\n"))
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("nodalmerge did not stop within %s of SIGTERM; stderr:\n%s", stopTimeout, s.stderr.String())
	}
	if s.waitErr != nil {
		t.Fatalf("nodalmerge exited with %v after SIGTERM; stderr:\n%s", s.waitErr, s.stderr.String())
	}
}

func (s *server) kill(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// loopbackPorts makes a server listen on loopback ports the kernel picks,
// so tests never collide with each other or with a running server.
func loopbackPorts() []string {
	return []string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0"}
}

// operatorTLS is grpcurl's flags for the server's dev operator certificate.
func (s *server) operatorTLS() []string {
	dir := filepath.Join(s.stateDir(), "tls")
	return []string{"-cacert", filepath.Join(dir, "ca.pem"), "-cert", filepath.Join(dir, "operator.pem"), "-key", filepath.Join(dir, "operator-key.pem")}
}

// bootstrapToken reads the server's bootstrap operator token.
func (s *server) bootstrapToken(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, filepath.Join(s.stateDir(), "bootstrap-operator.token")))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stateDir is the embedded default's state folder for a server run in dir
// without --store.
func (s *server) stateDir() string { return filepath.Join(s.dir, ".nodalmerge") }

// grpcurlResult is what one grpcurl run printed.
type grpcurlResult struct {
	out  string
	code int
}

// runShell runs a command line in bash the way a user pastes it, with the
// test's grpcurl first on PATH.
func runShell(t *testing.T, dir, line string) grpcurlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "PATH="+bins.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %q: %v", line, err)
		}
		code = ee.ExitCode()
	}
	return grpcurlResult{out: string(out), code: code}
}

// grpcurl runs the test's grpcurl binary with args.
func grpcurl(t *testing.T, args ...string) grpcurlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bins.grpcurl, args...).CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("grpcurl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return grpcurlResult{out: string(out), code: code}
}

// cleanEnv is the test's environment without NODALMERGE_* settings that
// would change the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NODALMERGE_") || strings.HasPrefix(kv, "AS_BIND_ADDR=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
