package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves goroutines behind: the admin tests
// start gRPC servers and clients, which must all be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
