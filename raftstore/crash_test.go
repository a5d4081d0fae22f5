package raftstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// Environment of the crash helper process.
const (
	crashDirEnv   = "RAFTSTORE_CRASH_DIR"
	crashStoreEnv = "RAFTSTORE_CRASH_STORE"
)

// TestCrashRecovery runs a node in a child process that writes from 8
// concurrent appliers, kills it with SIGKILL in the middle of the stream
// (writes in flight, no Close), reopens the same directory and checks that
// every write the child saw acknowledged survived, for both log stores.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("inside the crash helper")
	}
	for _, kind := range []logStoreKind{logStoreWAL, logStoreBolt} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			ctx := testContext(t)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStoreEnv+"="+kind.String())
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			lines := bufio.NewScanner(out)
			for len(acked) < 300 && lines.Scan() {
				if room, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
					acked[room] = true
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if len(acked) < 300 {
				t.Fatalf("helper acknowledged only %d writes before exiting", len(acked))
			}

			p := pkitest.New(t)
			s := openNodeWith(t, p, "crash", dir, func(c *Config) { c.logStore = kind })
			if !s.HadState() {
				t.Fatal("no state after the crash")
			}
			awaitSelfLeader(t, s) // commits, hence replays, the whole log
			have := map[string]bool{}
			for _, tk := range s.Ticks() {
				have[tk.GetRoom()] = true
			}
			for room := range acked {
				if !have[room] {
					t.Fatalf("acknowledged write %s lost in the crash (%d of %d acked writes present)", room, len(have), len(acked))
				}
			}
			t.Logf("%s: %d acknowledged writes before SIGKILL, %d present after recovery", kind, len(acked), len(have))
			// The recovered node keeps working.
			if _, err := s.Apply(ctx, putTickCmd("after-crash", 100, "")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCrashHelper is the child of TestCrashRecovery: it writes until it is
// killed (or its test context ends), printing each acknowledged write.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	kind := logStoreWAL
	if os.Getenv(crashStoreEnv) == "bolt" {
		kind = logStoreBolt
	}
	p := pkitest.New(t)
	s := openNodeWith(t, p, "crash", dir, func(c *Config) { c.logStore = kind })
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("crash")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				room := fmt.Sprintf("g%d-%d", g, i)
				if _, err := s.Apply(ctx, putTickCmd(room, 100, "")); err != nil {
					return
				}
				mu.Lock()
				fmt.Printf("acked %s\n", room)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
