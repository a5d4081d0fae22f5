package loadgen

import (
	"sync/atomic"
	"time"
)

// clock is the run's time base. Send times are kept as nanoseconds since
// base (monotonic), so they fit in atomics that the publishers write and
// the receivers read, and a latency is a subtraction.
type clock struct {
	base time.Time
	// Window bounds in ns since base; end 0 means the window is still
	// open, start 0 that it has not begun (base is never a send time).
	winStart, winEnd atomic.Int64
}

func newClock() *clock { return &clock{base: time.Now()} }

func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// inWindow says whether something sent at t (ns since base) belongs to
// the measured window.
func (c *clock) inWindow(t int64) bool {
	s := c.winStart.Load()
	if s == 0 || t < s {
		return false
	}
	e := c.winEnd.Load()
	return e == 0 || t < e
}

func (c *clock) openWindow() int64 {
	t := c.now()
	c.winStart.Store(t)
	return t
}

func (c *clock) closeWindow() int64 {
	t := c.now()
	c.winEnd.Store(t)
	return t
}
