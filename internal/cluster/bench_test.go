package cluster

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/gateway"
)

// countPeer counts what it receives and signals when it has want messages.
type countPeer struct {
	n, want atomic.Int64
	done    chan struct{}
}

func (p *countPeer) Enqueue([]byte) error {
	if p.n.Add(1) == p.want.Load() {
		close(p.done)
	}
	return nil
}

func (p *countPeer) Evicted() {}

// BenchmarkBus measures one sender's message rate through the bus to a peer
// on the same node (no NATS) and on another node (NATS routes): go test
// -run x -bench Bus ./internal/cluster.
func BenchmarkBus(b *testing.B) {
	for _, bc := range []struct {
		name string
		to   int
	}{{"local", 0}, {"cross-node", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			nodes := startBenchCluster(b)
			p := &countPeer{done: make(chan struct{})}
			p.want.Store(int64(b.N))
			detach, err := nodes[bc.to].Bus().Attach("sink", p)
			if err != nil {
				b.Fatal(err)
			}
			defer detach()
			for {
				if n, ok := nodes[0].Bus().Holder("sink"); ok && n == nodes[bc.to].ID() {
					break
				}
				time.Sleep(time.Millisecond)
			}
			msg := make([]byte, 256)
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if err := nodes[0].Bus().Send("sink", msg); err != nil && err != gateway.ErrQueueFull {
					b.Fatal(err)
				}
			}
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				b.Fatalf("received %d of %d", p.n.Load(), b.N)
			}
		})
	}
}

func startBenchCluster(b *testing.B) []*Node {
	b.Helper()
	n0, err := Start(Options{NodeID: "b0", ClusterListen: "127.0.0.1:0", Heartbeat: testHeartbeat, Missed: testMissed})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n0.Close() })
	n1, err := Start(Options{NodeID: "b1", ClusterListen: "127.0.0.1:0", Peers: []string{n0.RouteURL()}, Heartbeat: testHeartbeat, Missed: testMissed})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n1.Close() })
	ctx := b.Context()
	if err := n0.WaitNodes(ctx, 2); err != nil {
		b.Fatal(err)
	}
	if err := n1.WaitNodes(ctx, 2); err != nil {
		b.Fatal(err)
	}
	return []*Node{n0, n1}
}
