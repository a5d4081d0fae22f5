package node

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// registerNodeMetrics adds the process and Raft gauges. They are computed
// at scrape time from the store, so there is nothing to keep in step.
func registerNodeMetrics(reg *prometheus.Registry, store *raftstore.Store) {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nodalmerge_raft_leader",
			Help: "1 when this node is the Raft leader, else 0.",
		}, func() float64 {
			if store.IsLeader() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nodalmerge_raft_applied_index",
			Help: "The last Raft index applied to this node's state machine.",
		}, func() float64 { return float64(store.Status().AppliedIndex) }),
	)
}

// metricsHandler serves /metrics, /healthz (the process is up) and /readyz
// (Raft has a leader and the stores are open). It is only ever mounted on
// the metrics listener, never on the public one.
func (n *Node) metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if n.cfg.Pprof {
		// Profiling is opt-in and, like the metrics, only ever on the
		// internal metrics listener.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if st := n.store.Status(); st.LeaderID == "" || ctx.Err() != nil {
			http.Error(w, "not ready: no raft leader", http.StatusServiceUnavailable)
			return
		}
		// The data plane is set once its room store is open; both are
		// closed only after the metrics listener stops.
		if n.data.Load() == nil {
			http.Error(w, "not ready: room store and data plane not open yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}
