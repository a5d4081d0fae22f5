package controlplane

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the control-plane counters. A nil *metrics records nothing,
// which is how Config.Metrics == nil turns metrics off without branches at
// every call site.
type metrics struct {
	requests     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
}

// newMetrics registers the counters on reg and starts every known label
// combination at zero, so dashboards and alerts see the series before the
// first request (SPEC 5). Label values are bounded: command names come from
// the registry and reasons from a fixed list.
func newMetrics(reg prometheus.Registerer, commands []Command, reasons []string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodalmerge_controlplane_requests_total",
			Help: "Control-plane commands by command name and authorization decision.",
		}, []string{"command", "decision"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodalmerge_auth_failures_total",
			Help: "Failed control-plane authentications by reason.",
		}, []string{"reason"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("controlplane: register metrics: %w", err)
	}
	if err := reg.Register(m.authFailures); err != nil {
		// Leave the registry as we found it so a retry can succeed.
		reg.Unregister(m.requests)
		return nil, fmt.Errorf("controlplane: register metrics: %w", err)
	}
	for _, c := range commands {
		m.requests.WithLabelValues(c.Name, DecisionAllow)
		m.requests.WithLabelValues(c.Name, DecisionDeny)
	}
	for _, r := range reasons {
		m.authFailures.WithLabelValues(r)
	}
	return m, nil
}

func (m *metrics) request(command, decision string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(command, decision).Inc()
}

func (m *metrics) authFailure(reason string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(reason).Inc()
}

// unregister removes the counters from reg, for a server that failed to
// start after registering them.
func (m *metrics) unregister(reg prometheus.Registerer) {
	if m == nil || reg == nil {
		return
	}
	reg.Unregister(m.requests)
	reg.Unregister(m.authFailures)
}
