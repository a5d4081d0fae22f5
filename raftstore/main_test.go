package raftstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// closed Store must have stopped Raft, its transport and every connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
