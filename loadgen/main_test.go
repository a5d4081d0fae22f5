package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
)

// server is how the tests reach a real `nodalmerge serve`: TestMain builds
// the binary from this tree once, and each test runs its own process on
// kernel-picked loopback ports. (The server is built without -race: these
// tests check the load tool, and a race-instrumented server is several
// times slower than the one the tool is meant to measure.)
var server struct {
	bin string
	// args turn off per-peer rate limits when the binary has them, so
	// that a max-rate publisher is not closed with 4008.
	args []string
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "loadgen-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(mod)) == os.DevNull {
		fmt.Fprintln(os.Stderr, "loadgen tests: not inside the module:", err)
		return 1
	}
	// LOADGEN_SERVER_BIN names a prebuilt server instead (CI that has
	// built it already, or a tree whose server is mid-change).
	server.bin = os.Getenv("LOADGEN_SERVER_BIN")
	if server.bin == "" {
		server.bin = filepath.Join(dir, "nodalmerge")
		build := exec.Command("go", "build", "-o", server.bin, "./cmd/nodalmerge")
		build.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "loadgen tests: go build ./cmd/nodalmerge: %v\n%s", err, out)
			return 1
		}
	}
	help, err := exec.Command(server.bin, "serve", "--help").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen tests: nodalmerge serve --help: %v\n%s", err, help)
		return 1
	}
	for _, flag := range []string{"--peer-rate-nodes", "--peer-rate-bytes"} {
		if strings.Contains(string(help), flag) {
			server.args = append(server.args, flag, "0")
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen tests: leaked goroutines:", err)
			return 1
		}
	}
	return code
}

var wsLine = regexp.MustCompile(`WebSocket rooms\s+(ws://\S+)/ws/\{room\}`)

// startServer runs a server in a temporary folder and returns its
// WebSocket base URL and process id. It is stopped when the test ends.
func startServer(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(server.bin, append([]string{"serve",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0",
		"--log-level", "warn"}, server.args...)...)
	cmd.Dir = t.TempDir()
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
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := wsLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		done <- cmd.Wait() // after stdout is drained, as exec requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("nodalmerge did not stop within 20 s of SIGTERM")
		}
	})
	select {
	case u := <-urls:
		return u, cmd.Process.Pid
	case err := <-done:
		done <- err
		t.Fatalf("nodalmerge exited before its banner: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner within 30 s\n%s", stderr.String())
	}
	return "", 0
}
