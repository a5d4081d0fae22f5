package controlplane

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// TestAuditEventFields checks every field of an allowed and a denied event.
func TestAuditEventFields(t *testing.T) {
	e := newEnv(t, envOptions{})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	if _, err := client.GetStatus(bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read"))), &adminv1.GetStatusRequest{}); err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	if _, err := client.ListMembers(bearer(callCtx(t), e.mint(t, e.operatorClaims("keys.list"))), &adminv1.ListMembersRequest{}); err == nil {
		t.Fatal("ListMembers without cluster.read succeeded")
	}
	got := e.audit.take()
	want := []AuditEvent{
		{Time: e.now, Node: "n1", Actor: "alice/tok-1", Transport: "grpc", Command: "cluster.status",
			Requires: "cluster.read", Decision: "allow"},
		{Time: e.now, Node: "n1", Actor: "alice/tok-1", Transport: "grpc", Command: "cluster.list-members",
			Requires: "cluster.read", Decision: "deny", Reason: reasonMissingCapability},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestAuditDefaultsToLoggerWithoutSecrets uses the default auditor (the
// logger) and checks one "audit" record per call and no token text in any
// log line, for good and bad tokens alike.
func TestAuditDefaultsToLoggerWithoutSecrets(t *testing.T) {
	e := newEnv(t, envOptions{logAudit: true})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))

	good := e.mint(t, e.operatorClaims("cluster.read"))
	expiredClaims := e.operatorClaims("cluster.read")
	expiredClaims.IssuedAt, expiredClaims.ExpiresAt = e.now.Add(-2*time.Hour), e.now.Add(-time.Hour)
	expired := e.mint(t, expiredClaims)
	noCap := e.mint(t, e.operatorClaims("room.admin"))
	tampered := tamper(t, good)
	tokens := []string{good, expired, noCap, tampered}

	for _, tok := range tokens {
		_, _ = client.GetStatus(bearer(callCtx(t), tok), &adminv1.GetStatusRequest{})
	}
	_, _ = client.GetStatus(callCtx(t), &adminv1.GetStatusRequest{})

	out := e.logs.String()
	var audits []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var rec struct {
			Msg   string         `json:"msg"`
			Level string         `json:"level"`
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if rec.Msg == "audit" {
			if rec.Level != "INFO" {
				t.Errorf("audit record at level %s", rec.Level)
			}
			audits = append(audits, rec.Event)
		}
	}
	wantDecisions := []string{"allow", "deny", "deny", "deny", "deny"}
	if len(audits) != len(wantDecisions) {
		t.Fatalf("got %d audit records, want %d:\n%s", len(audits), len(wantDecisions), out)
	}
	for i, rec := range audits {
		if rec["decision"] != wantDecisions[i] || rec["command"] != "cluster.status" || rec["transport"] != "grpc" ||
			rec["node"] != "n1" || rec["requires"] != "cluster.read" || rec["time"] == nil {
			t.Errorf("audit record %d = %v", i, rec)
		}
	}
	for i, tok := range tokens {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(out, tok) || strings.Contains(out, sig) {
			t.Errorf("token %d (or its signature) appears in the log", i)
		}
	}
	if strings.Contains(out, "Bearer ") || strings.Contains(out, "authorization") {
		t.Error("the authorization metadata reached the log")
	}
}
