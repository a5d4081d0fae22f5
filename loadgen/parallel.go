package loadgen

import (
	"context"
	"sync"
)

// defaultDialConcurrency bounds simultaneous dials during setup: enough to
// open thousands of sessions in seconds without a SYN flood that the
// server's accept backlog would turn into retransmission delays.
const defaultDialConcurrency = 32

// forEach runs fn(i) for i in [0, n) on at most conc goroutines and
// returns the first error; after an error (or ctx ending) no new call
// starts. Calls already running finish.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, max(conc, 1))
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// The parent context ended (cancel above only follows an error).
		return context.Cause(ctx)
	}
	return first
}

// closeFuncs runs every close function, conc at a time, and waits.
func closeFuncs(fns []func(), conc int) {
	_ = forEach(context.Background(), len(fns), max(conc, 64), func(_ context.Context, i int) error {
		fns[i]()
		return nil
	})
}
