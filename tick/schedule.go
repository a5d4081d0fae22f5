package tick

import (
	"errors"
	"fmt"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// schedule is the part of a TickSchedule that decides how a loop runs;
// comparable, so Sync restarts a loop exactly when one of these changes
// (started_unix_ms alone changing does not restart it).
type schedule struct {
	room     string
	interval time.Duration
	prefix   string
}

func scheduleOf(t *statev1.TickSchedule) schedule {
	p := t.GetIntentPrefix()
	if p == "" {
		p = DefaultIntentPrefix
	}
	return schedule{room: t.GetRoom(), interval: time.Duration(t.GetIntervalMs()) * time.Millisecond, prefix: p}
}

func (s schedule) validate() error {
	if s.room == "" {
		return errors.New("empty room name")
	}
	if s.interval < MinInterval {
		return fmt.Errorf("interval %s is below the minimum %s", s.interval, MinInterval)
	}
	return nil
}
