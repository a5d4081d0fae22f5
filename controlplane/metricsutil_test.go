package controlplane

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// counterValue gathers reg and answers the counter name{labels}, failing
// the test if the series does not exist (pre-initialised series must).
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// seriesCount answers how many series of name reg holds.
func seriesCount(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func (e *env) requests(t testing.TB, command, decision string) float64 {
	t.Helper()
	return counterValue(t, e.metrics, "nodalmerge_controlplane_requests_total", map[string]string{"command": command, "decision": decision})
}

func (e *env) authFailures(t testing.TB, reason string) float64 {
	t.Helper()
	return counterValue(t, e.metrics, "nodalmerge_auth_failures_total", map[string]string{"reason": reason})
}
