package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTargetResolve(t *testing.T) {
	for _, in := range []string{"ws://127.0.0.1:7878", "ws://127.0.0.1:7878/", "ws://127.0.0.1:7878/ws", "ws://127.0.0.1:7878/ws/"} {
		tg, err := Target{URL: in}.resolve()
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := tg.room(3); !strings.HasPrefix(got, "ws://127.0.0.1:7878/ws/bench-") || !strings.HasSuffix(got, "-room3") {
			t.Errorf("%q: room URL %q", in, got)
		}
	}
	a, _ := Target{URL: "wss://h:1"}.resolve()
	b, _ := Target{URL: "wss://h:1"}.resolve()
	if a.room(0) == b.room(0) {
		t.Error("two runs got the same room names")
	}
	for _, c := range []struct {
		t     Target
		field string
	}{
		{Target{URL: "http://h:1"}, "URL"},
		{Target{URL: "ws://"}, "URL"},
		{Target{URL: "ws://h:1/other"}, "URL"},
		{Target{URL: "ws://h:1/?x=1"}, "URL"},
		{Target{URL: "ws://h:1", ServerPID: -1}, "ServerPID"},
		{Target{URL: "ws://h:1", RoomPrefix: "a/b"}, "RoomPrefix"},
	} {
		_, err := c.t.resolve()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%+v: error %v, want a ConfigError for %s", c.t, err, c.field)
		}
	}
}

func TestScenarioConfigErrors(t *testing.T) {
	ctx := context.Background()
	fan := DefaultFanoutConfig()
	fan.PayloadBytes = 4
	ing := DefaultIngestConfig()
	ing.PackSize = 0
	js := DefaultJoinstormConfig()
	js.MaxConnections = 5 // without Hold
	for name, run := range map[string]func() (string, error){
		"PayloadBytes": func() (string, error) { _, err := RunFanout(ctx, fan); return "PayloadBytes", err },
		"PackSize":     func() (string, error) { _, err := RunIngest(ctx, ing); return "PackSize", err },
		"MaxConn":      func() (string, error) { _, err := RunJoinstorm(ctx, js); return "MaxConnections", err },
	} {
		field, err := run()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: error %v, want a ConfigError for %s", name, err, field)
		}
	}
}

func TestForEachStopsAtFirstError(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("boom")
	err := forEach(context.Background(), 1000, 1, func(_ context.Context, i int) error {
		calls.Add(1)
		if i == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 4 {
		t.Fatalf("err %v after %d calls, want boom after about 3", err, calls.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := forEach(ctx, 10, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestPresignCount(t *testing.T) {
	if got := presignCount(123, 0, 0, 1, 1); got != 123 {
		t.Errorf("explicit count: %d", got)
	}
	// 1000/s for 11 s, 10 % headroom, plus the window and slack.
	if got := presignCount(0, 1000, 1e9, 10e9, 64); got != 12100+64+16 {
		t.Errorf("rate 1000: %d", got)
	}
}
