package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// publisherSubscribe is the hello.subscribe of publishers: a pattern that
// matches none of the paths the benchmark writes, so that a server that
// filters by subscription does not send publishers each other's packs
// (Centrifugo's publisher is not a subscriber either). A server that does
// not filter yet sends them anyway; the ack reader discards them.
var publisherSubscribe = []string{"loadgen-publishers-read-nothing"}

// publisher sends a pre-signed chain over a client.Conn with at most
// `window` packs unacknowledged, reading pack-acks on a second goroutine.
// Acks come back in send order (the server handles a session's frames one
// at a time), so the i-th ack answers the i-th pack.
type publisher struct {
	conn  *client.Conn
	chain *chain
	clk   *clock

	sentAt []atomic.Int64 // per pack: send time (ns since clk.base)

	sent          atomic.Uint64 // packs sent
	acked         atomic.Uint64 // packs acknowledged
	ackedNodes    atomic.Uint64 // nodes the server accepted
	rejectedNodes atomic.Uint64
	relayed       atomic.Uint64 // acked packs with an accepted node: each is relayed once
	exhausted     atomic.Bool   // the chain ran out before stop
	senderDone    atomic.Bool
	firstReject   atomic.Pointer[string]

	ackHist *Histogram // written by the ack goroutine only
}

// newPublisher makes a publisher recording send times into sentAt (one
// entry per frame of c).
func newPublisher(conn *client.Conn, c *chain, clk *clock, sentAt []atomic.Int64) *publisher {
	return &publisher{conn: conn, chain: c, clk: clk, sentAt: sentAt, ackHist: NewHistogram()}
}

// pacing says how fast a publisher sends.
type pacing struct {
	window int     // packs in flight at most
	rate   float64 // packs per second; 0 = as fast as the window allows
	drain  time.Duration
}

// run sends until stop closes, the chain runs out or the connection
// fails, then waits (at most pc.drain) for the outstanding acks.
func (p *publisher) run(ctx context.Context, stop <-chan struct{}, pc pacing) error {
	ackCtx, cancelAck := context.WithCancel(ctx)
	defer cancelAck()
	sem := make(chan struct{}, pc.window)
	ackErr := make(chan error, 1)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		ackErr <- p.readAcks(ackCtx, sem)
	}()

	sendErr := p.send(ctx, stop, sem, ackDone, pc)

	// Whichever of the two goroutines sees the last ack after the other
	// has finished ends the ack reader: the sender marks itself done and
	// then compares, the reader counts an ack and then compares.
	p.senderDone.Store(true)
	if p.acked.Load() == p.sent.Load() {
		cancelAck()
	}
	t := time.NewTimer(pc.drain)
	defer t.Stop()
	select {
	case <-ackDone:
	case <-t.C:
		cancelAck()
		<-ackDone
	}
	aerr := <-ackErr
	if sendErr != nil {
		return sendErr
	}
	if aerr != nil {
		return aerr
	}
	if n := p.sent.Load() - p.acked.Load(); n > 0 {
		return fmt.Errorf("loadgen: %d packs not acknowledged within %s", n, pc.drain)
	}
	return nil
}

func (p *publisher) send(ctx context.Context, stop <-chan struct{}, sem chan struct{}, ackDone <-chan struct{}, pc pacing) error {
	var interval time.Duration
	if pc.rate > 0 {
		interval = time.Duration(float64(time.Second) / pc.rate)
	}
	start := time.Now()
	for i, frame := range p.chain.frames {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-stop:
					t.Stop()
					return nil
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("loadgen: publishing: %w", ctx.Err())
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-stop:
			return nil
		case <-ackDone:
			return nil // the ack reader failed; run reports why
		case <-ctx.Done():
			return fmt.Errorf("loadgen: publishing: %w", ctx.Err())
		}
		select {
		case <-stop:
			return nil
		default:
		}
		p.sentAt[i].Store(p.clk.now())
		p.sent.Add(1) // before the write: its ack may come before SendRaw returns
		if err := p.conn.SendRaw(ctx, frame); err != nil {
			p.sent.Add(^uint64(0))
			return fmt.Errorf("loadgen: publishing: %w", err)
		}
	}
	p.exhausted.Store(true)
	return nil
}

// readAcks reads until every sent pack is acknowledged after the sender
// stopped, or until ctx ends.
func (p *publisher) readAcks(ctx context.Context, sem <-chan struct{}) error {
	finished := func() bool { return p.senderDone.Load() && p.acked.Load() == p.sent.Load() }
	for !finished() {
		m, err := p.conn.Next(ctx)
		if err != nil {
			if finished() {
				return nil
			}
			if code, text, ok := client.CloseError(err); ok {
				hint := ""
				if code == 4008 {
					hint = " (start the server with --peer-rate-nodes 0 --peer-rate-bytes 0 for benchmarks)"
				}
				return fmt.Errorf("loadgen: publisher closed by server: %d %s%s", code, text, hint)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil // run reports unacknowledged packs
			}
			return fmt.Errorf("loadgen: publisher: %w", err)
		}
		switch m.Type {
		case protocol.TypePackAck:
			if err := p.onAck(m.Raw); err != nil {
				return err
			}
			<-sem
		case protocol.TypeError:
			e, _ := m.AsError()
			msg := ""
			if e != nil {
				msg = e.Msg
			}
			return fmt.Errorf("loadgen: publisher got error from server: %q", msg)
		}
	}
	return nil
}

func (p *publisher) onAck(raw []byte) error {
	now := p.clk.now()
	var a protocol.PackAck
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("loadgen: decode pack-ack: %w", err)
	}
	i := p.acked.Load()
	if i >= p.sent.Load() {
		return errors.New("loadgen: pack-ack for a pack that was not sent")
	}
	if at := p.sentAt[i].Load(); p.clk.inWindow(at) {
		p.ackHist.Record(time.Duration(now - at))
	}
	if a.Rejected > 0 && len(a.Rejections) > 0 {
		r := a.Rejections[0].Reason
		p.firstReject.CompareAndSwap(nil, &r)
	}
	p.ackedNodes.Add(uint64(max(a.Accepted, 0)))
	p.rejectedNodes.Add(uint64(max(a.Rejected, 0)))
	if a.Accepted > 0 {
		p.relayed.Add(1)
	}
	p.acked.Add(1)
	return nil
}
