package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tfd-project/tfd/client"
)

func init() {
	registerBench("gateway", benchmark{
		usage:   "gateway [-pairs P] [-size S] [-duration D] [-window W] [-addr2 ADDR | -cross-node]",
		summary: "P peer pairs exchange S-byte messages through XS_GATEWAY for D: delivered msgs/s, drops, p50/p99 latency",
		run:     benchGateway,
	})
}

// gwBenchHeader is what every bench message starts with: a sequence number
// and the send time (UnixNano), both big-endian. Sender and receiver run in
// this process, so the latency uses one clock even across nodes.
const gwBenchHeader = 16

// gwBenchConfig is one tf bench gateway run.
type gwBenchConfig struct {
	pairs    int
	size     int
	duration time.Duration
	window   int
	// addr2, when set, is where the second peer of every pair connects (a
	// second node of a cluster): messages then cross nodes.
	addr2 string
	// grace is how long receivers wait for messages in flight after the
	// senders stop, before the rest count as lost.
	grace time.Duration
}

// gwBenchPeer is one end of a pair.
type gwBenchPeer struct {
	c       *client.Client
	g       *client.Gateway
	id      string
	peer    *gwBenchPeer
	tokens  chan struct{} // the partner's free in-flight slots (window > 0)
	sent    atomic.Int64
	got     atomic.Int64
	inTime  atomic.Int64 // messages received before the senders' deadline
	bad     atomic.Int64 // wrong size or garbled header
	lat     []time.Duration
	stalled atomic.Int64 // window waits that timed out (lost messages)
}

func benchGateway(ctx context.Context, e *env, args []string) ([]figure, error) {
	cfg := gwBenchConfig{grace: 2 * time.Second}
	fs := flag.NewFlagSet("bench gateway", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.IntVar(&cfg.pairs, "pairs", 8, "peer pairs (2 sessions each)")
	fs.IntVar(&cfg.size, "size", 256, fmt.Sprintf("message size in bytes (%d..%d)", gwBenchHeader, client.MaxGatewayMessage))
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long the peers send")
	fs.IntVar(&cfg.window, "window", 64, "most messages in flight per direction of a pair (0 = send as fast as possible: drops show the relay's limits)")
	fs.StringVar(&cfg.addr2, "addr2", "", "address the second peer of each pair connects to (cross-node runs); default the same server")
	crossNode := fs.Bool("cross-node", false, "put the second peer of each pair on another node of the -addr server's cluster (found through its TLB)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case *crossNode && cfg.addr2 != "":
		return nil, usageError("bench gateway: -cross-node finds the second node itself; drop -addr2")
	case cfg.pairs < 1:
		return nil, usageError("bench gateway: -pairs must be at least 1")
	case cfg.size < gwBenchHeader || cfg.size > client.MaxGatewayMessage:
		return nil, usageError(fmt.Sprintf("bench gateway: -size must be %d..%d", gwBenchHeader, client.MaxGatewayMessage))
	case cfg.duration <= 0:
		return nil, usageError("bench gateway: -duration must be positive")
	case cfg.window < 0:
		return nil, usageError("bench gateway: -window must be 0 or more")
	}
	if *crossNode {
		addr2, err := crossNodeAddr(ctx, e)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(e.stderr, "cross-node: pairs between %s and %s\n", e.conn.addr, addr2)
		cfg.addr2 = addr2
	}
	return runGatewayBench(ctx, e, cfg)
}

func runGatewayBench(ctx context.Context, e *env, cfg gwBenchConfig) ([]figure, error) {
	var rb [6]byte
	rand.Read(rb[:])
	run := hex.EncodeToString(rb[:])
	e2 := *e
	if cfg.addr2 != "" {
		e2.conn.addr = cfg.addr2
	}
	peers := make([]*gwBenchPeer, 2*cfg.pairs)
	defer func() {
		for _, p := range peers {
			if p != nil && p.c != nil {
				p.c.Close()
			}
		}
	}()
	// Join everyone (a few at a time: each join is an RSA handshake).
	var wg sync.WaitGroup
	errs := make(chan error, len(peers))
	sem := make(chan struct{}, 8)
	for i := range peers {
		side := "a"
		ee := e
		if i%2 == 1 {
			side, ee = "b", &e2
		}
		p := &gwBenchPeer{id: fmt.Sprintf("bench-%s-%d-%s", run, i/2, side)}
		peers[i] = p
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := ee.dial(ctx)
			if err != nil {
				errs <- err
				return
			}
			p.c = c
			g, err := c.Gateway(ctx, p.id)
			if err != nil {
				errs <- fmt.Errorf("join %s: %w", p.id, err)
				return
			}
			p.g = g
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for i := 0; i < len(peers); i += 2 {
		a, b := peers[i], peers[i+1]
		a.peer, b.peer = b, a
		if cfg.window > 0 {
			for _, p := range []*gwBenchPeer{a, b} {
				p.tokens = make(chan struct{}, cfg.window)
				for range cfg.window {
					p.tokens <- struct{}{}
				}
			}
		}
	}

	start := time.Now()
	deadline := start.Add(cfg.duration)
	sendCtx, stopSend := context.WithDeadline(ctx, deadline)
	defer stopSend()
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	var sendErr atomic.Pointer[error]
	var senders, receivers sync.WaitGroup
	for _, p := range peers {
		senders.Add(1)
		go func() {
			defer senders.Done()
			if err := p.send(sendCtx, cfg); err != nil {
				sendErr.CompareAndSwap(nil, &err)
				stopSend()
			}
		}()
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			p.receive(recvCtx, cfg, deadline)
		}()
	}
	senders.Wait()
	if ep := sendErr.Load(); ep != nil {
		stopRecv()
		receivers.Wait()
		return nil, *ep
	}
	// Let messages in flight arrive, then call the rest lost.
	var sent, got int64
	graceEnd := time.Now().Add(cfg.grace)
	for {
		sent, got = 0, 0
		for _, p := range peers {
			sent += p.sent.Load()
			got += p.got.Load()
		}
		if got >= sent || time.Now().After(graceEnd) || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopRecv()
	receivers.Wait()
	for _, p := range peers {
		p.g.Close()
	}

	var inTime, bad, stalls int64
	var lat []time.Duration
	for _, p := range peers {
		inTime += p.inTime.Load()
		bad += p.bad.Load()
		stalls += p.stalled.Load()
		lat = append(lat, p.lat...)
	}
	if bad > 0 {
		return nil, fmt.Errorf("bench gateway: %d messages arrived garbled or with the wrong size", bad)
	}
	slices.Sort(lat)
	secs := cfg.duration.Seconds()
	figs := []figure{
		{"pairs", float64(cfg.pairs), "pairs"},
		{"message_size", float64(cfg.size), "bytes"},
		{"window", float64(cfg.window), "msgs"},
		{"duration", secs, "s"},
		{"sent", float64(sent), "msgs"},
		{"delivered", float64(got), "msgs"},
		{"delivered_rate", float64(inTime) / secs, "msgs/s"},
		{"delivered_throughput", float64(inTime) * float64(cfg.size) / secs / 1e6, "MB/s"},
		{"dropped", float64(sent - got), "msgs"},
		{"latency_p50", gwPercentile(lat, 0.50).Seconds() * 1e3, "ms"},
		{"latency_p99", gwPercentile(lat, 0.99).Seconds() * 1e3, "ms"},
		{"latency_max", gwPercentile(lat, 1).Seconds() * 1e3, "ms"},
	}
	if stalls > 0 {
		figs = append(figs, figure{"window_timeouts", float64(stalls), "waits"})
	}
	return figs, nil
}

// send sends to the partner until ctx ends, keeping at most window messages
// in flight. A slot that does not come back within 200 ms is taken as a lost
// message, so drops cannot stall the pair for good.
func (p *gwBenchPeer) send(ctx context.Context, cfg gwBenchConfig) error {
	msg := make([]byte, cfg.size)
	for i := gwBenchHeader; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for seq := int64(0); ; seq++ {
		if p.peer.tokens != nil {
			select {
			case <-p.peer.tokens:
			default:
				wait.Reset(200 * time.Millisecond)
				select {
				case <-p.peer.tokens:
				case <-wait.C:
					p.stalled.Add(1)
				case <-ctx.Done():
					return nil
				}
				wait.Stop()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		binary.BigEndian.PutUint64(msg, uint64(seq))
		binary.BigEndian.PutUint64(msg[8:], uint64(time.Now().UnixNano()))
		if err := p.g.Send(p.peer.id, msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.sent.Add(1)
	}
}

// receive reads until ctx ends, recording latency and freeing window slots.
func (p *gwBenchPeer) receive(ctx context.Context, cfg gwBenchConfig, deadline time.Time) {
	for {
		m, err := p.g.Recv(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		if len(m) != cfg.size {
			p.bad.Add(1)
			continue
		}
		sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(m[8:])))
		if d := now.Sub(sentAt); d >= 0 {
			p.lat = append(p.lat, d)
		} else {
			p.bad.Add(1)
		}
		p.got.Add(1)
		if !now.After(deadline) {
			p.inTime.Add(1)
		}
		if p.tokens != nil {
			select {
			case p.tokens <- struct{}{}:
			default:
			}
		}
	}
}

// gwPercentile returns the q-quantile of sorted (0 for none).
func gwPercentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}
