package pki_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// lockedBuffer is a log sink for a watch running on another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// touch rewrites path with data and a distinct modification time, so that
// the test does not depend on the file system's timestamp resolution.
func touch(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestFileWatchCheck(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	base := time.Now().Add(-time.Hour)
	touch(t, a, []byte("one"), base)
	touch(t, b, []byte("two"), base)

	calls := 0
	var fail error
	logs := &lockedBuffer{}
	w := pki.NewFileWatch("test material", []string{a, b}, func() error { calls++; return fail },
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	check := func(wantReload bool, wantErr bool) {
		t.Helper()
		reloaded, err := w.Check()
		if reloaded != wantReload || (err != nil) != wantErr {
			t.Fatalf("Check = %v, %v; want reload %v, error %v", reloaded, err, wantReload, wantErr)
		}
	}
	check(false, false) // nothing changed since the baseline

	// Same size, same content, new mtime: a rewrite counts.
	touch(t, a, []byte("one"), base.Add(time.Second))
	check(true, false)
	check(false, false)

	// Same mtime and size but a new file (rename over it): counts too.
	tmp := filepath.Join(dir, "b.tmp")
	touch(t, tmp, []byte("two"), base)
	if err := os.Rename(tmp, b); err != nil {
		t.Fatal(err)
	}
	check(true, false)

	// A failing reload is reported once, not at every check, and is
	// retried when the files change again.
	fail = errors.New("pki: key b.pem does not match certificate a.pem")
	touch(t, b, []byte("two, broken"), base.Add(2*time.Second))
	check(true, true)
	check(false, false)
	if !strings.Contains(logs.String(), "keeping the material in use") {
		t.Errorf("failed reload not logged as a warning:\n%s", logs.String())
	}
	fail = nil
	touch(t, b, []byte("two, fixed"), base.Add(3*time.Second))
	check(true, false)

	// A file that disappears is an error without calling reload; its
	// return triggers a reload.
	before := calls
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	check(true, true)
	check(false, false)
	if calls != before {
		t.Fatalf("reload called with a file missing")
	}
	touch(t, a, []byte("one"), base.Add(4*time.Second))
	check(true, false)
	if calls != before+1 {
		t.Fatalf("reload calls = %d, want %d", calls, before+1)
	}
}

// TestFileWatchRunReloadsMaterial: a renewed node certificate written by
// CreateNode is loaded by the polling loop, which stops with its context.
func TestFileWatchRunReloadsMaterial(t *testing.T) {
	p := pkitest.New(t)
	m := p.Node(t, "n1")
	ca, cert, key := p.Files("n1")
	before := m.Leaf().SerialNumber

	reloaded := make(chan error, 16)
	w := pki.NewFileWatch("node", []string{ca, cert, key}, func() error {
		err := m.Reload()
		reloaded <- err
		return err
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	if err := pki.CreateNode(p.Dir, filepath.Dir(cert), "n1", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for m.Leaf().SerialNumber.Cmp(before) == 0 {
		select {
		case err := <-reloaded:
			if err != nil {
				// The key is written before the certificate: a poll in
				// between sees a mismatch and retries on the next change.
				t.Logf("intermediate reload: %v", err)
			}
		case <-deadline:
			t.Fatal("renewed certificate not loaded within 10s")
		}
	}
}

func TestFileWatchRunOff(t *testing.T) {
	w := pki.NewFileWatch("off", nil, func() error { return nil }, nil)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(context.Background(), 0) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with interval 0 did not return")
	}
}
