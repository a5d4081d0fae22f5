package controlplane

import (
	"testing"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func TestMetricsStartAtZeroAndCount(t *testing.T) {
	e := newEnv(t, envOptions{})
	commands := e.srv.Registry().All()
	if got, want := seriesCount(t, e.metrics, "nodalmerge_controlplane_requests_total"), 2*len(commands); got != want {
		t.Errorf("requests_total has %d series before any call, want %d", got, want)
	}
	if got, want := seriesCount(t, e.metrics, "nodalmerge_auth_failures_total"), len(knownAuthFailureReasons()); got != want {
		t.Errorf("auth_failures_total has %d series before any call, want %d", got, want)
	}
	for _, c := range commands {
		for _, d := range []string{DecisionAllow, DecisionDeny} {
			if v := e.requests(t, c.Name, d); v != 0 {
				t.Errorf("requests{%s,%s} = %v before any call", c.Name, d, v)
			}
		}
	}

	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read")))
	for range 3 {
		if _, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil {
			t.Fatalf("GetStatus: %v", err)
		}
	}
	_, _ = client.ListMembers(callCtx(t), &adminv1.ListMembersRequest{})

	checks := []struct {
		command, decision string
		want              float64
	}{
		{"cluster.status", DecisionAllow, 3},
		{"cluster.status", DecisionDeny, 0},
		{"cluster.list-members", DecisionDeny, 1},
	}
	for _, c := range checks {
		if v := e.requests(t, c.command, c.decision); v != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.command, c.decision, v, c.want)
		}
	}
	if v := e.authFailures(t, "missing bearer token"); v != 1 {
		t.Errorf("auth_failures{missing bearer token} = %v, want 1", v)
	}
}
