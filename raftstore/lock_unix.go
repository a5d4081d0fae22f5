//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the advisory lock that keeps a second process off a
// store directory. The kernel drops it when the process dies, so a crash
// never leaves a stale lock behind.
const lockFileName = "LOCK"

// lockDir takes an exclusive, non-blocking lock on <dir>/LOCK and returns
// the function that releases it.
func lockDir(dir string) (func() error, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("raftstore: store %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("raftstore: lock %s: %w", path, err)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
