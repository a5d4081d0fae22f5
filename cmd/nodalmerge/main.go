// Command nodalmerge runs and operates NodalMerge nodes: `serve` runs one
// node, `cert` makes the cluster's TLS material.
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
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "nodalmerge:", err)
		os.Exit(1)
	}
}
