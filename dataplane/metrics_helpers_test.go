package dataplane_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// scrape serves reg over HTTP, as /metrics would, and parses the text
// exposition.
func scrape(t testing.TB, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(stepCtx(t), http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// metricValue returns a counter's or gauge's value (histograms: the sample
// count) for the series with these labels; -1 when absent.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fam, ok := scrape(t, reg)[name]
	if !ok {
		return -1
	}
outer:
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// expectSkipping reads until a message of type typ, skipping peer events
// (other peers come and go while a test floods).
func expectSkipping(t testing.TB, c *client.Conn, typ string) client.Message {
	t.Helper()
	for {
		m := next(t, c)
		if m.Type == typ {
			return m
		}
		if m.Type != protocol.TypePeerJoined && m.Type != protocol.TypePeerLeft {
			t.Fatalf("got %s, want %s: %.200s", m.Type, typ, m.Raw)
		}
	}
}

func txOf(t testing.TB, n *syncv1.Node) *syncv1.Transaction {
	t.Helper()
	var tx syncv1.Transaction
	if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil {
		t.Fatal(err)
	}
	return &tx
}
