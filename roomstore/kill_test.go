package roomstore

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// helperDirEnv tells a re-executed test binary to act as the writer of
// TestKill9KeepsAcknowledgedNodes, in that directory.
const helperDirEnv = "ROOMSTORE_KILL_HELPER_DIR"

var killRooms = []string{"kill-a", "kill-b", "kill-c"}

// TestHelperWriter is the child process: writers in several rooms put
// chains of small batches and print each batch's ids once Put returned,
// until killed. It does nothing in a normal test run.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestKill9KeepsAcknowledgedNodes")
	}
	// A small checkpoint size so the kill also lands in and around
	// checkpoints, not only in log appends.
	s, err := Open(dir, Options{CheckpointBytes: 64 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var out sync.Mutex
	die := func(err error) {
		out.Lock()
		fmt.Println("error", err)
		os.Exit(2)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		die(err)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			name := killRooms[w%len(killRooms)]
			r, err := s.Open(name)
			if err != nil {
				die(err)
			}
			var parent []history.ID
			// Bounded in case the parent never kills us.
			deadline := time.Now().Add(30 * time.Second)
			for lamport := uint64(1); time.Now().Before(deadline); lamport += 3 {
				batch := make([]history.Accepted, 1+int(lamport)%3)
				for i := range batch {
					tx := &syncv1.Transaction{Lamport: lamport + uint64(i), WallMs: testWall}
					for _, p := range parent {
						tx.Parents = append(tx.Parents, p[:])
					}
					n, id, err := history.NewNode(key, tx)
					if err != nil {
						die(err)
					}
					batch[i] = history.Accepted{Node: n, ID: id, Lamport: tx.Lamport, Parents: parent}
					parent = []history.ID{id}
				}
				if err := r.Put(batch); err != nil {
					die(err)
				}
				line := "ack " + name
				for _, a := range batch {
					line += " " + a.ID.String()
				}
				out.Lock()
				fmt.Println(line)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3) // never killed: the parent reports it
}

func TestKill9KeepsAcknowledgedNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	acked := make(map[string][]history.ID)
	total := 0
	sc := bufio.NewScanner(stdout)
	const killAfter = 1500
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "ack" {
			if len(fields) > 0 && fields[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
			continue
		}
		room := fields[1]
		got, err := history.ParseIDs(fields[2:])
		if err != nil {
			t.Fatalf("child printed %q: %v", sc.Text(), err)
		}
		acked[room] = append(acked[room], got...)
		total += len(got)
		if total >= killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
			// Keep reading: lines already printed were acknowledged too.
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read child output: %v", err)
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", werr)
	}
	if ctx.Err() != nil {
		t.Fatal("child ran into the test deadline")
	}

	s := openStore(t, dir, Options{})
	defer s.Close()
	for _, name := range killRooms {
		r := openRoom(t, s, name)
		if len(acked[name]) == 0 {
			t.Fatalf("room %s: child acknowledged nothing", name)
		}
		// Every acknowledged node is there, correctly signed, with its
		// ancestry; the room may hold more (stored, not yet printed).
		for _, id := range acked[name] {
			n, ok := r.Get(id)
			if !ok {
				t.Fatalf("room %s: acknowledged node %s lost", name, id)
			}
			checkNode(t, r, id, n)
		}
		all := make([]history.ID, 0, r.Len())
		for _, n := range r.Missing(nil) {
			all = append(all, history.NodeID(n))
		}
		checkHistory(t, r, all)
		t.Logf("room %s: %d acknowledged, %d stored", name, len(acked[name]), r.Len())
	}
}
