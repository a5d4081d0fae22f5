package dataplane

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Lamport rejection reasons used as metric labels (bounded set).
const (
	lamportReasonCeiling   = "ceiling"
	lamportReasonWallClock = "wall_clock"
)

// metrics are the data plane's collectors (SPEC section 5). Counters with
// labels known up front are created at zero so they are visible before the
// first event.
type metrics struct {
	rooms           prometheus.Gauge
	peers           prometheus.Gauge
	accepted        prometheus.Counter
	mergeBatch      prometheus.Histogram
	lagged          prometheus.Counter
	sendTimeout     prometheus.Counter
	rateDrops       prometheus.Counter
	lamportRejected *prometheus.CounterVec
	tokenExpired    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodalmerge_rooms_total", Help: "Rooms with at least one connected session.",
		}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodalmerge_peers_total", Help: "Connected peers (distinct public keys per room), summed over rooms.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodalmerge_nodes_accepted_total", Help: "Nodes newly stored (duplicates not counted).",
		}),
		mergeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "nodalmerge_merge_batch_seconds",
			Help: "Time to resolve and store one commit batch (one or more packs of a room committed together).",
			// 50 µs (in memory) to 2.6 s (a slow disk).
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		lagged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodalmerge_broadcast_lagged_total", Help: "Sessions closed with 4001 because their queue overflowed.",
		}),
		sendTimeout: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodalmerge_ws_send_timeout_total", Help: "Sessions closed with 1011 because a send blocked past the send timeout.",
		}),
		rateDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodalmerge_rate_limit_drops_total", Help: "Sessions closed with 4008 for exceeding a per-peer rate limit.",
		}),
		lamportRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodalmerge_lamport_rejected_total", Help: "Nodes rejected by the Lamport ceiling or the wall-clock check.",
		}, []string{"reason"}),
		tokenExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodalmerge_token_expired_disconnects_total", Help: "Sessions closed with 4002 because their token expired.",
		}),
	}
	m.lamportRejected.WithLabelValues(lamportReasonCeiling)
	m.lamportRejected.WithLabelValues(lamportReasonWallClock)
	for _, c := range []prometheus.Collector{m.rooms, m.peers, m.accepted, m.mergeBatch, m.lagged, m.sendTimeout,
		m.rateDrops, m.lamportRejected, m.tokenExpired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dataplane: register metrics: %w", err)
		}
	}
	return m, nil
}
