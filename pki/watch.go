package pki

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// FileWatch re-runs a reload function when any of a set of files changes
// on disk, so that renewed certificates (certbot, cert-manager, a new
// `nodalmerge cert create-node`) are picked up without a restart.
//
// It polls rather than using inotify: polling is portable, survives the
// directory and symlink swaps Kubernetes uses for mounted secrets (os.Stat
// follows the link, and a swap changes the file identity), and costs three
// stat calls per interval. A file counts as changed when its identity
// (device and inode), size or modification time differs from the last
// check.
type FileWatch struct {
	name   string
	files  []string
	reload func() error
	log    *slog.Logger
	last   []os.FileInfo // nil entry: the file was missing at the last check
}

// NewFileWatch watches files for what (a short description used in logs,
// such as "public TLS certificate"), calling reload when they change. The
// current state of the files is the baseline: the caller has just loaded
// them. A nil logger discards.
func NewFileWatch(what string, files []string, reload func() error, log *slog.Logger) *FileWatch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &FileWatch{name: what, files: files, reload: reload, log: log}
	w.last, _ = w.stat()
	return w
}

// Check stats the files once and, if any changed since the last check,
// calls reload. It reports whether a reload was attempted and its error.
//
// The file states are recorded before reload reads the files, whatever
// reload returns: a file still being written when it was read gets a new
// modification time when the write ends, so the next check retries; a
// broken file that stays as it is is reported once, not every interval.
// Reload errors are logged as warnings (they name files, never key bytes)
// and the previous material stays in use. Check is not safe for concurrent
// use with itself or Run.
func (w *FileWatch) Check() (bool, error) {
	now, statErr := w.stat()
	if sameStates(w.last, now) {
		return false, nil
	}
	w.last = now
	if statErr != nil {
		w.log.Warn("TLS files changed but cannot be read; keeping the material in use", "what", w.name, "err", statErr)
		return true, statErr
	}
	if err := w.reload(); err != nil {
		w.log.Warn("TLS files changed but do not load; keeping the material in use", "what", w.name, "err", err)
		return true, err
	}
	// Debug only: the reload function logs what it loaded (serial, expiry).
	w.log.Debug("TLS files reloaded", "what", w.name, "files", w.files)
	return true, nil
}

// Run checks every interval until ctx ends. An interval of zero or less
// returns at once (reloading is off).
func (w *FileWatch) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = w.Check()
		}
	}
}

// stat returns the state of every file; a missing or unreadable file has a
// nil entry and contributes to the returned error.
func (w *FileWatch) stat() ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(w.files))
	var errs []error
	for i, f := range w.files {
		fi, err := os.Stat(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("pki: watch: %w", err)) // names the file
			continue
		}
		out[i] = fi
	}
	return out, errors.Join(errs...)
}

func sameStates(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameState(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameState(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
