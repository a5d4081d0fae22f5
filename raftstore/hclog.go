package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// quietRaftInfo lists Raft INFO messages that describe routine mechanics
// (snapshots, log compaction, replication pipelines). They are demoted to
// slog Debug so that INFO shows what an operator cares about: elections,
// leadership and membership changes. Matched by prefix.
var quietRaftInfo = [...]string{
	"starting snapshot up to",
	"snapshot complete up to",
	"compacting logs",
	"pipelining replication",
	"aborting pipeline replication",
	"creating new snapshot",
	"reaping snapshot",
	"snapshot restore progress",
	"no logs to truncate",
	"opening snapshot",
}

// hclogAdapter is an hclog.Logger that forwards to a *slog.Logger, so that
// Raft's logs land in the node's structured log with the same handler,
// level and attributes as everything else.
type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
	// level is shared by the adapter and everything Named/With derived from
	// it, as SetLevel on an hclog root is expected to affect children.
	level *atomic.Int32
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger, name string) *hclogAdapter {
	lvl := new(atomic.Int32)
	lvl.Store(int32(hclog.Trace))
	return &hclogAdapter{l: l, name: name, level: lvl}
}

// slogLevel maps an hclog level (and message) to a slog level.
func slogLevel(level hclog.Level, msg string) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		for _, p := range quietRaftInfo {
			if strings.HasPrefix(msg, p) {
				return slog.LevelDebug
			}
		}
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default: // Error and anything above
		return slog.LevelError
	}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < hclog.Level(a.level.Load()) {
		return
	}
	sl := slogLevel(level, msg)
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	all := make([]any, 0, 2+len(a.implied)+len(args))
	if a.name != "" {
		all = append(all, "logger", a.name)
	}
	all = append(all, a.implied...)
	all = append(all, args...)
	for i, v := range all {
		all[i] = renderValue(v)
	}
	a.l.Log(ctx, sl, msg, all...)
}

// renderValue expands hclog's deferred-format values (hclog.Fmt), which
// slog would otherwise print as their raw format string and arguments.
func renderValue(v any) any {
	if f, ok := v.(hclog.Format); ok && len(f) > 0 {
		if format, ok := f[0].(string); ok {
			return fmt.Sprintf(format, f[1:]...)
		}
		return fmt.Sprint(f...)
	}
	return v
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(level hclog.Level) bool {
	return level >= hclog.Level(a.level.Load()) && a.l.Enabled(context.Background(), slogLevel(level, ""))
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return append([]any(nil), a.implied...) }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if a.name != "" {
		c.name = a.name + "." + name
	} else {
		c.name = name
	}
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

func (a *hclogAdapter) SetLevel(level hclog.Level) { a.level.Store(int32(level)) }

func (a *hclogAdapter) GetLevel() hclog.Level { return hclog.Level(a.level.Load()) }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &adapterWriter{a: a, level: level}
}

// adapterWriter turns each written line of a standard *log.Logger into one
// log record.
type adapterWriter struct {
	a     *hclogAdapter
	level hclog.Level
}

func (w *adapterWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		if s := strings.TrimRight(string(line), "\r\n"); s != "" {
			w.a.Log(w.level, s)
		}
	}
	return len(p), nil
}
