package controlplane

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// finishedCalls answers the "finished call" records of a JSON log.
func finishedCalls(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if rec["msg"] == "finished call" {
			recs = append(recs, rec)
		}
	}
	return recs
}

// TestFinishedCallLog: one line per call with the method, code, command
// and actor, at the level the code calls for (INFO for OK and
// UNAUTHENTICATED, WARN for PERMISSION_DENIED), and never the token.
func TestFinishedCallLog(t *testing.T) {
	e := newEnv(t, envOptions{})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	good := e.mint(t, e.operatorClaims("cluster.read"))
	noCap := e.mint(t, e.operatorClaims("room.admin"))
	if _, err := client.GetStatus(bearer(callCtx(t), good), &adminv1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := client.GetStatus(bearer(callCtx(t), noCap), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.PermissionDenied, "reject.control_plane_forbidden: command=cluster.status requires=cluster.read")
	_, err = client.GetStatus(callCtx(t), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: missing bearer token")

	out := e.logs.String()
	recs := finishedCalls(t, out)
	if len(recs) != 3 {
		t.Fatalf("got %d finished-call records, want 3:\n%s", len(recs), out)
	}
	want := []struct{ level, code, actor string }{
		{"INFO", "OK", "alice/tok-1"},
		{"WARN", "PermissionDenied", "alice/tok-1"},
		{"INFO", "Unauthenticated", "operator:alice"},
	}
	for i, w := range want {
		r := recs[i]
		if r["level"] != w.level || r["grpc.code"] != w.code || r["actor"] != w.actor || r["command"] != "cluster.status" ||
			r["grpc.service"] != "nodalmerge.admin.v1.ClusterService" || r["grpc.method"] != "GetStatus" ||
			r["grpc.method_type"] != "unary" || r["grpc.time_ms"] == nil || r["peer.address"] == nil {
			t.Errorf("record %d = %v; want level %s, code %s, actor %s", i, r, w.level, w.code, w.actor)
		}
	}
	if recs[0]["grpc.error"] != nil || recs[2]["grpc.error"] != "auth: missing bearer token" {
		t.Errorf("grpc.error fields: %v, %v", recs[0]["grpc.error"], recs[2]["grpc.error"])
	}
	for _, tok := range []string{good, noCap} {
		if strings.Contains(out, tok[strings.LastIndex(tok, ".")+1:]) {
			t.Error("a token signature reached the log")
		}
	}
}
