package tick_test

import (
	"testing"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

func TestWorldPath(t *testing.T) {
	for in, want := range map[string]string{
		"intent/x":          "world/x",
		"intent/player/7/v": "world/player/7/v",
		"intent/":           "",
		"intentional/x":     "",
		"world/x":           "",
		"input/x":           "",
	} {
		got, ok := tick.WorldPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("WorldPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestPlan(t *testing.T) {
	key := newKey(t)
	s, m := history.NewMemStore(), tick.NewMaterializer()
	a := signed(t, key, 1, nil,
		client.Set("intent/p1/move", []byte("up")),
		client.Set("intent/p2/move", []byte("down")),
		client.SetBlob("intent/p1/avatar", []byte{9}, "image/png"),
		client.Set("world/p2/move", []byte("down")), // already mirrored
		client.Set("intent/gone", []byte("x")),
		client.Set("other/x", []byte("not an intent")),
	)
	put(t, s, a, signed(t, key, 2, []history.ID{a.ID}, client.Delete("intent/gone")))
	m.Update(s)

	ops := tick.Plan(m, "")
	want := []struct {
		path, value, media string
	}{
		{"world/p1/avatar", "\x09", "image/png"},
		{"world/p1/move", "up", ""},
	}
	if len(ops) != len(want) {
		t.Fatalf("Plan = %v, want %d ops", ops, len(want))
	}
	for i, w := range want {
		op := ops[i]
		if op.GetPath() != w.path {
			t.Errorf("op %d path %q, want %q", i, op.GetPath(), w.path)
		}
		switch k := op.GetKind().(type) {
		case *syncv1.Op_SetBlob:
			if w.media == "" || string(k.SetBlob.GetData()) != w.value || k.SetBlob.GetMediaType() != w.media {
				t.Errorf("op %d = %v, want blob %q %q", i, op, w.value, w.media)
			}
		case *syncv1.Op_Set:
			if w.media != "" || string(k.Set.GetValue()) != w.value {
				t.Errorf("op %d = %v, want set %q", i, op, w.value)
			}
		default:
			t.Errorf("op %d has kind %T", i, k)
		}
	}
	if ops := tick.Plan(m, "intent/p2/"); len(ops) != 0 {
		t.Errorf("Plan with prefix intent/p2/ = %v, want nothing (p2 is mirrored)", ops)
	}
	if ops := tick.Plan(m, "intent/p1/m"); len(ops) != 1 || ops[0].GetPath() != "world/p1/move" {
		t.Errorf("Plan with prefix intent/p1/m = %v, want only world/p1/move", ops)
	}
	if ops := tick.Plan(m, "other/"); len(ops) != 0 {
		t.Errorf("Plan with a prefix outside intent/ = %v, want nothing", ops)
	}
}
