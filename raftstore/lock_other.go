//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package raftstore

// lockDir is a no-op where flock(2) is not available; the stores' own
// locks (bolt's file lock) are then the only guard against sharing a
// store directory between processes.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
