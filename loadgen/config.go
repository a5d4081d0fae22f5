package loadgen

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// ConfigError names the configuration field that is wrong, so a command
// line can map it back to its flag.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("loadgen: %s %s", e.Field, e.Msg) }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Target is the server under test.
type Target struct {
	// URL is the server's WebSocket base, "ws://host:port" (rooms are
	// at URL/ws/{room}); a trailing "/ws" or "/ws/" is accepted.
	URL string
	// ServerPID, when not 0, is the server's process id on this machine:
	// its CPU time and RSS are read from /proc around the measured window.
	ServerPID int
	// RoomPrefix starts every room name; a random run id follows it, so
	// each run gets fresh rooms and no catch-up from an earlier run.
	RoomPrefix string
	Logger     *slog.Logger
}

// target is a validated Target.
type target struct {
	base   string // ws://host:port/ws/
	pid    int
	prefix string // prefix + run id + "-"
	log    *slog.Logger
}

func (t Target) resolve() (*target, error) {
	base, err := parseBaseURL("URL", t.URL)
	if err != nil {
		return nil, err
	}
	if t.ServerPID < 0 {
		return nil, cfgErr("ServerPID", "must not be negative, got %d", t.ServerPID)
	}
	prefix, err := checkRoomPrefix(t.RoomPrefix)
	if err != nil {
		return nil, err
	}
	log := t.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &target{base: base, pid: t.ServerPID, prefix: runPrefix(prefix) + "-", log: log}, nil
}

// parseBaseURL checks a server's WebSocket base URL ("ws://host:port",
// a trailing "/ws" or "/ws/" accepted) and answers "ws://host:port/ws/";
// field names the config field in errors.
func parseBaseURL(field, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", cfgErr(field, "must be ws://host:port or wss://host:port, got %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", cfgErr(field, "must not have a query or fragment, got %q", raw)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/ws")
	if path != "" {
		return "", cfgErr(field, "must be the server's base URL (rooms are at /ws/{room}), got path %q", u.Path)
	}
	return u.Scheme + "://" + u.Host + "/ws/", nil
}

// checkRoomPrefix answers the prefix ("bench" when empty) if it is made of
// room-name characters.
func checkRoomPrefix(prefix string) (string, error) {
	if prefix == "" {
		prefix = "bench"
	}
	for _, r := range prefix {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", r) {
			return "", cfgErr("RoomPrefix", "may use only letters, digits and -._~, got %q", prefix)
		}
	}
	return prefix, nil
}

// roomName is the name of the run's i-th room, as the admin API and room
// tokens name it.
func (t *target) roomName(i int) string { return fmt.Sprintf("%sroom%d", t.prefix, i) }

// room is the URL of the run's i-th room.
func (t *target) room(i int) string { return t.base + t.roomName(i) }
