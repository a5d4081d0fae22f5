package raftstore

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
)

func TestHCLogAdapter(t *testing.T) {
	var buf syncbuf.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var h hclog.Logger = newHCLogAdapter(l, "raft")

	h.Named("net").With("peer", "n2").Warn("heartbeat timeout reached", "servers", hclog.Fmt("%d servers", 3))
	h.Info("entering leader state")
	h.Info("compacting logs", "from", 1) // routine mechanics: demoted to Debug
	h.Debug("vote granted")
	h.Trace("trace detail")
	h.Error("failed to contact", "id", "n3")
	h.StandardLogger(nil).Print("from std logger")

	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="heartbeat timeout reached" logger=raft.net peer=n2 servers="3 servers"`,
		`level=INFO msg="entering leader state" logger=raft`,
		`level=ERROR msg="failed to contact" logger=raft id=n3`,
		`level=INFO msg="from std logger" logger=raft`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"compacting logs", "vote granted", "trace detail"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("log output at INFO contains %q:\n%s", unwanted, out)
		}
	}
	if h.IsDebug() || !h.IsInfo() || !h.IsError() {
		t.Errorf("IsDebug %v IsInfo %v IsError %v; want false, true, true", h.IsDebug(), h.IsInfo(), h.IsError())
	}
	h.SetLevel(hclog.Error)
	h.Warn("suppressed by SetLevel")
	if strings.Contains(buf.String(), "suppressed by SetLevel") || h.GetLevel() != hclog.Error {
		t.Error("SetLevel(Error) did not suppress Warn")
	}
}
