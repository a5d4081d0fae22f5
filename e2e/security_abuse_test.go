package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// abuseRate is --peer-rate-nodes for the abuse test: small, so a flood is
// quick to produce, and still far above the well-behaved writer's pace.
const abuseRate = "20"

// TestChecklist6_RateLimitsUnderSyntheticAbuse: with --peer-rate-nodes 20,
// a peer flooding packs as fast as it can, and one sending a single pack
// above one second's allowance, are closed with 4008 "rate limit
// exceeded", counted by nodalmerge_rate_limit_drops_total; meanwhile a
// writer at 4 nodes/s in the same room is never limited and a reader gets
// every one of its nodes, before, during and after the flood.
func TestChecklist6_RateLimitsUnderSyntheticAbuse(t *testing.T) {
	sc := startSecCluster(t, secOptions{flags: []string{"--peer-rate-nodes", abuseRate}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room, at = "e2e-abuse", 2
	const drops = "nodalmerge_rate_limit_drops_total"
	dropsBefore, _ := metricValue(sc.scrape(at), drops)

	_, wKey := newKey(t)
	w := client.NewAuthor(wKey)
	writer := sc.mustJoin(ctx, at, room, "writer", wKey, nil)
	_, rKey := newKey(t)
	reader := sc.mustJoin(ctx, at, room, "reader", rKey, nil)
	_, fKey := newKey(t)
	flooder := sc.mustJoin(ctx, at, room, "flooder", fKey, nil)
	_, bKey := newKey(t)
	bulk := sc.mustJoin(ctx, at, room, "one-big-pack", bKey, nil)

	// steady writes one node, checks it is accepted and that the reader
	// gets it, and keeps the 4 nodes/s pace.
	steady := func(path string) {
		t.Helper()
		next := time.Now().Add(250 * time.Millisecond)
		id, ack := writer.write(ctx, t, w, path)
		if ack.Accepted != 1 {
			t.Fatalf("well-behaved write %s acked %+v", path, ack)
		}
		reader.awaitNode(ctx, t, id)
		time.Sleep(time.Until(next))
	}
	steady("steady/0")
	steady("steady/1")

	// The flood runs on its own goroutine (it only sends; the test
	// goroutine judges) at floodRate nodes/s, one and a half times the
	// budget, until the server closes the flooder: it drains the peer's
	// bucket of one second's allowance in about two seconds, during which
	// the steady writer goes on. The pace is kept on average (a late
	// tick sends what is due), so a slow machine still floods.
	const floodRate = 30
	f := client.NewAuthor(fKey)
	flood := make(chan int, 1)
	go func() {
		sent := 0
		began := time.Now()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for flooder.open() && ctx.Err() == nil {
			due := int(time.Since(began).Seconds()*floodRate) + 1
			var nodes []*syncv1.Node
			for sent+len(nodes) < due {
				n, _, err := f.Write(client.Set("flood/x", []byte(`1`)))
				if err != nil {
					break
				}
				nodes = append(nodes, n)
			}
			sent += len(nodes)
			if len(nodes) > 0 && flooder.conn.SendPack(ctx, nodes) != nil {
				break
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		flood <- sent
	}()
	var during int
	floodStart := time.Now()
	for flooder.open() {
		steady("steady/during")
		during++
		if during > 60 {
			t.Fatal("the flooder is still connected after 15 s of flooding")
		}
	}
	sent := <-flood
	code, text, _, err := flooder.closed(ctx)
	if err != nil || code != closeRateLimit || text != "rate limit exceeded" {
		t.Errorf("flooder ended with %d %q (%v), want %d %q", code, text, err, closeRateLimit, "rate limit exceeded")
	}
	t.Logf("flooder sent %d nodes at %d/s against a budget of %s/s and was closed after %s; the steady writer wrote %d nodes meanwhile, all received",
		sent, floodRate, abuseRate, time.Since(floodStart).Round(time.Millisecond), during)

	// One pack larger than a second's allowance is refused outright.
	b := client.NewAuthor(bKey)
	big := make([]*syncv1.Node, 25)
	for i := range big {
		n, _, err := b.Write(client.Set("bulk/x", []byte(`1`)))
		if err != nil {
			t.Fatal(err)
		}
		big[i] = n
	}
	if err := bulk.conn.SendPack(ctx, big); err != nil {
		t.Fatal(err)
	}
	code, text, _, err = bulk.closed(ctx)
	if err != nil || code != closeRateLimit || text != "rate limit exceeded" {
		t.Errorf("a 25-node pack under a 20 nodes/s budget ended with %d %q (%v), want %d", code, text, err, closeRateLimit)
	}

	for i := range 3 {
		steady("steady/after/" + string(rune('a'+i)))
	}
	if !writer.open() || !reader.open() {
		t.Error("a well-behaved session was closed")
	}
	if after, ok := metricValue(sc.scrape(at), drops); !ok || after < dropsBefore+2 {
		t.Errorf("%s went %v → %v (present %v), want it to count both closes", drops, dropsBefore, after, ok)
	}
}

// awaitNode reads packs until one holds id.
func (s *wsSession) awaitNode(ctx context.Context, t *testing.T, id history.ID) {
	t.Helper()
	for {
		if slices.Contains(packIDs(t, s.await(ctx, t, "pack")), id) {
			return
		}
	}
}
