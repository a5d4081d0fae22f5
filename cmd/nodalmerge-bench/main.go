// Command nodalmerge-bench drives a running `nodalmerge serve` over its
// WebSocket protocol or its admin API and reports throughput, latency and
// (with --server-pid) the server's CPU and memory. See loadgen/DESIGN.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "nodalmerge-bench:", err)
		os.Exit(1)
	}
}
