package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/gateway"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// join dials a new session and enters the gateway as id.
func join(t *testing.T, srv *servertest.Server, id string) (*client.Client, *client.Gateway) {
	t.Helper()
	c := srv.Dial(t)
	g, err := c.Gateway(servertest.Context(t), id)
	if err != nil {
		t.Fatalf("join %q: %v", id, err)
	}
	return c, g
}

func recv(t *testing.T, g *client.Gateway) []byte {
	t.Helper()
	m, err := g.Recv(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitStats polls the server's gateway counters until cond holds (or the
// test's context ends).
func waitStats(t *testing.T, srv *servertest.Server, what string, cond func(gateway.Stats) bool) gateway.Stats {
	t.Helper()
	ctx := servertest.Context(t)
	for {
		st := srv.Srv.GatewayStats()
		if cond(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %+v", what, st)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// rawJoin enters the gateway on a raw handshaken connection.
func rawJoin(t *testing.T, srv *servertest.Server, id string) *tfproto.Conn {
	t.Helper()
	c := srv.DialHandshake(t)
	if got := servertest.Command(t, c, "xs_gateway"); got != "OK" {
		t.Fatalf("XS_GATEWAY: %q", got)
	}
	if got := servertest.Command(t, c, id); got != "OK" {
		t.Fatalf("identity %q: %q", id, got)
	}
	return c
}

func TestGatewayTwoPeersBothWays(t *testing.T) {
	srv := servertest.Start(t)
	_, alice := join(t, srv, "alice")
	_, bob := join(t, srv, "bob")
	const n = 300
	var wg sync.WaitGroup
	for _, p := range []struct {
		me   *client.Gateway
		name string
		peer string
	}{{alice, "alice", "bob"}, {bob, "bob", "alice"}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range n {
				msg := fmt.Appendf(nil, "%s→%s #%d %s", p.name, p.peer, i, strings.Repeat("x", i*7))
				if err := p.me.Send(p.peer, msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				m, err := p.me.Recv(servertest.Context(t))
				if err != nil {
					t.Error(err)
					return
				}
				want := fmt.Sprintf("%s→%s #%d %s", p.peer, p.name, i, strings.Repeat("x", i*7))
				if string(m) != want {
					t.Errorf("%s got %.40q, want %.40q", p.name, m, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := srv.Srv.GatewayStats(); st.Received != 2*n || st.Delivered != 2*n || st.Dropped() != 0 || st.Peers != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGatewaySendToSelf(t *testing.T) {
	srv := servertest.Start(t)
	_, me := join(t, srv, "narcissus")
	for _, msg := range []string{"hello me", "", strings.Repeat("z", gateway.MaxMessage)} {
		if err := me.Send("narcissus", []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, me); string(got) != msg {
			t.Fatalf("got %d bytes, want %d", len(got), len(msg))
		}
	}
}

// TestGatewayThousandPeers: 1000 peers on one server each send one message to
// a random peer; every message arrives intact at the peer it names.
func TestGatewayThousandPeers(t *testing.T) {
	srv := servertest.Start(t)
	const n = 1000
	peers := make([]*client.Gateway, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := client.Dial(servertest.Context(t), srv.Addr, srv.Options())
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			g, err := c.Gateway(servertest.Context(t), fmt.Sprint("peer-", i))
			if err != nil {
				t.Error(err)
				return
			}
			peers[i] = g
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Each message names its sender and receiver and carries a checksum of
	// a random-length payload.
	encode := func(from, to int, payload []byte) []byte {
		sum := sha256.Sum256(payload)
		b := binary.BigEndian.AppendUint32(nil, uint32(from))
		b = binary.BigEndian.AppendUint32(b, uint32(to))
		b = append(b, sum[:]...)
		return append(b, payload...)
	}
	expect := make([]atomic.Int32, n)
	dest := make([]int, n)
	for i := range n {
		dest[i] = rand.IntN(n)
		expect[dest[i]].Add(1)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, rand.IntN(2000))
			for j := range payload {
				payload[j] = byte(rand.Uint32())
			}
			if err := peers[i].Send(fmt.Sprint("peer-", dest[i]), encode(i, dest[i], payload)); err != nil {
				t.Error(err)
			}
		}()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range expect[i].Load() {
				m, err := peers[i].Recv(servertest.Context(t))
				if err != nil {
					t.Error(err)
					return
				}
				if len(m) < 40 {
					t.Errorf("peer %d: short message (%d bytes)", i, len(m))
					return
				}
				from, to := binary.BigEndian.Uint32(m), binary.BigEndian.Uint32(m[4:])
				sum := sha256.Sum256(m[40:])
				if int(to) != i || int(from) >= n || dest[from] != i || !bytes.Equal(sum[:], m[8:40]) {
					t.Errorf("peer %d: corrupt or misrouted message from %d to %d", i, from, to)
				}
			}
		}()
	}
	wg.Wait()
	if st := srv.Srv.GatewayStats(); st.Received != n || st.Delivered != n || st.Dropped() != 0 || st.Peers != n {
		t.Fatalf("stats %+v", st)
	}
}

// TestGatewayStalledReceiver: a receiver that never reads costs only itself.
// One sender interleaves messages to a stalled and to a healthy receiver and is
// never held back (every healthy message arrives, the stalled receiver's
// overflow is dropped and counted). Then a healthy pair's round trips, each
// with a side message to the stalled receiver, run at a rate within a generous
// ratio of the same round trips whose side messages go to a receiver that
// reads them (the baseline does more work, so the ratio is normally ≤ 1).
func TestGatewayStalledReceiver(t *testing.T) {
	srv := servertest.Start(t)
	_, stalled := join(t, srv, "stalled") // never calls Recv
	_ = stalled
	_, sender := join(t, srv, "sender")
	_, healthy := join(t, srv, "healthy")
	_, ping := join(t, srv, "ping")
	_, pong := join(t, srv, "pong")

	_, drain := join(t, srv, "drain")
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			if _, err := drain.Recv(servertest.Context(t)); err != nil {
				return
			}
		}
	}()
	defer func() { drain.Close(); <-drained }()

	const rounds = 100
	side := bytes.Repeat([]byte("d"), 32*1024)
	roundTrips := func(sideDest string) time.Duration {
		start := time.Now()
		for i := range rounds {
			if err := ping.Send(sideDest, side); err != nil {
				t.Fatal(err)
			}
			msg := fmt.Appendf(nil, "r%d", i)
			if err := ping.Send("pong", msg); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, pong); !bytes.Equal(got, msg) {
				t.Fatalf("pong got %q", got)
			}
			if err := pong.Send("ping", msg); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, ping); !bytes.Equal(got, msg) {
				t.Fatalf("ping got %q", got)
			}
		}
		return time.Since(start)
	}
	baseline := roundTrips("drain")

	// Flood the stalled receiver, a message to the healthy receiver after
	// each one, until the server reports queue-full drops.
	big := bytes.Repeat([]byte("s"), 32*1024)
	stop := make(chan struct{})
	floodDone := make(chan int, 1)
	go func() {
		i := 0
		defer func() { floodDone <- i }()
		for ; ; i++ {
			select {
			case <-stop:
				sender.Send("healthy", []byte("end"))
				return
			default:
			}
			if err := sender.Send("stalled", big); err != nil {
				t.Error(err)
				return
			}
			if err := sender.Send("healthy", fmt.Appendf(nil, "h%d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	healthyGot := make(chan int, 1)
	go func() {
		i := 0
		defer func() { healthyGot <- i }()
		for ; ; i++ {
			m, err := healthy.Recv(servertest.Context(t))
			if err != nil {
				t.Error(err)
				return
			}
			if string(m) == "end" {
				return
			}
			if string(m) != fmt.Sprint("h", i) {
				t.Errorf("healthy got %q, want h%d", m, i)
				return
			}
		}
	}()
	waitStats(t, srv, "queue-full drops", func(st gateway.Stats) bool { return st.DroppedQueueFull > 0 })
	close(stop)
	sent, got := <-floodDone, <-healthyGot
	if got != sent || sent == 0 {
		t.Fatalf("the healthy receiver got %d of %d messages", got, sent)
	}
	// The stalled receiver's queue is full for good: every side message of
	// the measured round trips is dropped.
	before := srv.Srv.GatewayStats().DroppedQueueFull
	during := roundTrips("stalled")
	if d := srv.Srv.GatewayStats().DroppedQueueFull - before; d != rounds {
		t.Errorf("%d of %d side messages to the stalled receiver dropped", d, rounds)
	}
	st := srv.Srv.GatewayStats()
	if st.DroppedQueueFull == 0 || st.DroppedQueueFull > uint64(sent+rounds) || st.DroppedUnknown+st.DroppedInvalid+st.DroppedTooLarge != 0 {
		t.Fatalf("stats %+v after %d flood messages", st, sent)
	}
	ratio := float64(during) / float64(baseline)
	t.Logf("%d flood messages, %d dropped; round trips %v without, %v with a stalled receiver (%.2f×)", sent, st.DroppedQueueFull, baseline, during, ratio)
	if ratio > 20 {
		t.Errorf("a healthy pair's %d round trips took %.1f× longer while a receiver was stalled", rounds, ratio)
	}
}
