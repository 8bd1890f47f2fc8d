package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/gateway"
	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/server"
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

// stalledPeer enters the gateway as id on a raw connection with a small
// receive buffer, and never reads from it: its messages pile up in the server.
func stalledPeer(t *testing.T, srv *servertest.Server, id string) *tfproto.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	nc, err := d.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	c := tfproto.NewConn(nc)
	key, _ := tfproto.NewSessionKey(nil, 32)
	if err := tfproto.ClientHandshake(c, srv.Config.Proto, srv.Config.Hash, &servertest.Key(t).PublicKey, key); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"XS_GATEWAY", id} {
		if got := servertest.Command(t, c, line); got != "OK" {
			t.Fatalf("%s: %q", line, got)
		}
	}
	return c
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
	// A small queue bound and a small receive buffer on the stalled client
	// make the stall bite after a few megabytes instead of tens.
	srv := servertest.StartOpts(t, []server.Option{server.WithGatewayLimits(gateway.Limits{MaxBytes: 1})})
	stalledPeer(t, srv, "stalled")
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
	dropsBefore := srv.Srv.GatewayStats().DroppedQueueFull

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
	waitStats(t, srv, "queue-full drops", func(st gateway.Stats) bool { return st.DroppedQueueFull > dropsBefore })
	close(stop)
	sent, got := <-floodDone, <-healthyGot
	if got != sent || sent == 0 {
		t.Fatalf("the healthy receiver got %d of %d messages", got, sent)
	}
	// The stalled receiver still reads nothing during the measured round
	// trips (how many of their side messages drop depends on how far the
	// kernel's buffers have grown meanwhile).
	before := srv.Srv.GatewayStats().DroppedQueueFull
	during := roundTrips("stalled")
	sideDrops := srv.Srv.GatewayStats().DroppedQueueFull - before
	st := srv.Srv.GatewayStats()
	if st.DroppedQueueFull == 0 || st.DroppedQueueFull > uint64(sent+rounds) || st.DroppedUnknown+st.DroppedInvalid+st.DroppedTooLarge != 0 {
		t.Fatalf("stats %+v after %d flood messages", st, sent)
	}
	ratio := float64(during) / float64(baseline)
	t.Logf("%d flood messages, %d dropped in all (%d of %d side messages); round trips %v without, %v with a stalled receiver (%.2f×)",
		sent, st.DroppedQueueFull, sideDrops, rounds, baseline, during, ratio)
	if ratio > 20 {
		t.Errorf("a healthy pair's %d round trips took %.1f× longer while a receiver was stalled", rounds, ratio)
	}
}

func TestGatewayDuplicateIdentity(t *testing.T) {
	srv := servertest.Start(t)
	_, old := join(t, srv, "dup")
	_, sender := join(t, srv, "sender")
	_, newer := join(t, srv, "dup")
	if err := sender.Send("dup", []byte("m1")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, newer); string(got) != "m1" {
		t.Fatalf("new holder got %q", got)
	}
	// The evicted session is still in the gateway and may send; "dup" now
	// reaches the newer session, even from the old one.
	if err := old.Send("dup", []byte("from-old")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, newer); string(got) != "from-old" {
		t.Fatalf("new holder got %q", got)
	}
	// Leaving waits for every delivery the server made: after both leave,
	// the server has delivered exactly the two messages the new one read.
	for _, g := range []*client.Gateway{old, newer} {
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Recv(servertest.Context(t)); !errors.Is(err, client.ErrGatewayClosed) {
		t.Fatalf("old peer: %v", err)
	}
	st := srv.Srv.GatewayStats()
	if st.Delivered != 2 || st.Evicted != 1 || st.Registered != 3 || st.Dropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The old session leaving did not release the newer registration, and
	// the newer one leaving did.
	if err := sender.Send("dup", []byte("m2")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, srv, "drop to the departed identity", func(st gateway.Stats) bool { return st.DroppedUnknown == 1 })
}

func TestGatewayLeaveThenCommand(t *testing.T) {
	srv := servertest.Start(t)
	c, g := join(t, srv, "leaver")
	if _, err := c.Echo(servertest.Context(t), "x"); !errors.Is(err, client.ErrGatewayActive) {
		t.Fatalf("command inside the gateway: %v", err)
	}
	if err := g.Send("leaver", []byte("before leaving")); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Send("leaver", nil); !errors.Is(err, client.ErrGatewayClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if got, err := c.Echo(servertest.Context(t), "back in command mode"); err != nil || got != "back in command mode" {
		t.Fatalf("ECHO after leaving: %q %v", got, err)
	}
	// And in again, under the same identity.
	g, err := c.Gateway(servertest.Context(t), "leaver")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Send("leaver", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, g); string(got) != "again" {
		t.Fatalf("got %q", got)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if st := srv.Srv.GatewayStats(); st.Peers != 0 || st.Registered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGatewayRawLoop drives the loop byte by byte: ignored headers (0, -2,
// MinInt32), a negative message size, a zero-length message, -1 with no reply,
// then a normal command.
func TestGatewayRawLoop(t *testing.T) {
	srv := servertest.Start(t)
	c := rawJoin(t, srv, "raw")
	send := func(fields ...[]byte) {
		t.Helper()
		if err := c.WriteFields(fields...); err != nil {
			t.Fatal(err)
		}
	}
	hdr := func(n int32) []byte { return tfproto.Int32Field(n) }
	send(hdr(0))
	send(hdr(-2))
	send(hdr(-1 << 31))
	send(hdr(3), []byte("raw"), hdr(-7)) // dropped, nothing more read
	send(hdr(3), []byte("raw"), hdr(0))  // empty message
	send(hdr(3), []byte("raw"), hdr(5), []byte("hello"))
	for _, want := range []string{"", "hello"} {
		body, err := c.ReadFrame(0)
		if err != nil || string(body) != want {
			t.Fatalf("delivery %q %v, want %q", body, err, want)
		}
	}
	send(hdr(-1))
	if got := servertest.Command(t, c, "ECHO after"); got != "after" {
		t.Fatalf("ECHO after -1: %q", got)
	}
	st := srv.Srv.GatewayStats()
	if st.Received != 3 || st.Delivered != 2 || st.DroppedInvalid != 1 || st.Peers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGatewayDisconnectReleasesIdentity(t *testing.T) {
	srv := servertest.Start(t)
	ghost := rawJoin(t, srv, "ghost")
	_, sender := join(t, srv, "sender")
	ghost.NetConn().Close() // no -1
	// The identity goes as soon as the server sees the connection end.
	waitStats(t, srv, "the peer to leave", func(st gateway.Stats) bool { return st.Peers == 1 })
	if err := sender.Send("ghost", []byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, srv, "a drop to the departed identity", func(st gateway.Stats) bool { return st.DroppedUnknown == 1 })
	// The name is free again.
	_, g := join(t, srv, "ghost")
	if err := sender.Send("ghost", []byte("welcome")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, g); string(got) != "welcome" {
		t.Fatalf("got %q", got)
	}
}

func TestGatewayIdentityStatus(t *testing.T) {
	srv := servertest.Start(t)
	failed := tfproto.FailedLine(2, tfproto.GatewayIdentityFailed)
	tests := []struct {
		name string
		id   string
		want string
	}{
		{"empty", "", failed},
		{"over 4096", strings.Repeat("i", gateway.MaxIdentity+1), failed},
		{"largest field", strings.Repeat("i", gateway.MaxMessage), failed},
		{"4096", strings.Repeat("i", gateway.MaxIdentity), "OK"},
		{"binary", "\x00\xff/../x y", "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.DialHandshake(t)
			if got := servertest.Command(t, c, "Xs_GateWay"); got != "OK" {
				t.Fatalf("XS_GATEWAY: %q", got)
			}
			if got := servertest.Command(t, c, tt.id); got != tt.want {
				t.Fatalf("identity status %q, want %q", got, tt.want)
			}
			if tt.want == "OK" {
				c.WriteInt32(-1)
			}
			// Command mode either way.
			if got := servertest.Command(t, c, "ECHO still here"); got != "still here" {
				t.Fatalf("ECHO: %q", got)
			}
		})
	}
	// The client API reports the FAILED and keeps the session usable.
	cl := srv.Dial(t)
	_, err := cl.Gateway(servertest.Context(t), "")
	var fe *client.Error
	if !errors.As(err, &fe) || fe.Code != 2 {
		t.Fatalf("empty identity: %v", err)
	}
	if got, err := cl.Echo(servertest.Context(t), "ok"); err != nil || got != "ok" {
		t.Fatalf("after FAILED: %q %v", got, err)
	}
	// Identities are exact strings: no path rules, no case folding.
	_, a := join(t, srv, "/slashA")
	if err := a.Send("slashA", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send("/slashA", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a); string(got) != "y" {
		t.Fatalf("got %q", got)
	}
}

// TestGatewayProtocolErrors: a header beyond 524287 (or a negative identity
// header) closes that session only.
func TestGatewayProtocolErrors(t *testing.T) {
	srv := servertest.Start(t)
	_, bystander := join(t, srv, "bystander")
	hdr := func(n int32) []byte { return tfproto.Int32Field(n) }
	tests := []struct {
		name   string
		join   bool
		fields [][]byte
	}{
		{"identity header", false, [][]byte{hdr(gateway.MaxMessage + 1)}},
		{"negative identity header", false, [][]byte{hdr(-1)}},
		{"destination header", true, [][]byte{hdr(gateway.MaxMessage + 1)}},
		{"message header", true, [][]byte{hdr(3), []byte("abc"), hdr(gateway.MaxMessage + 1)}},
		{"huge message header", true, [][]byte{hdr(9), []byte("bystander"), hdr(1 << 30)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *tfproto.Conn
			if tt.join {
				c = rawJoin(t, srv, "victim")
			} else {
				c = srv.DialHandshake(t)
				if got := servertest.Command(t, c, "XS_GATEWAY"); got != "OK" {
					t.Fatal(got)
				}
			}
			if err := c.WriteFields(tt.fields...); err != nil {
				t.Fatal(err)
			}
			servertest.ExpectClosed(t, c)
		})
	}
	// The largest valid message still goes through, to someone else.
	big := bytes.Repeat([]byte{0xa5}, gateway.MaxMessage)
	_, s := join(t, srv, "sender")
	if err := s.Send("bystander", big); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, bystander); !bytes.Equal(got, big) {
		t.Fatalf("got %d bytes", len(got))
	}
	waitStats(t, srv, "victims gone", func(st gateway.Stats) bool { return st.Peers == 2 })
}

func TestGatewayClientLimits(t *testing.T) {
	srv := servertest.Start(t)
	_, g := join(t, srv, "limits")
	for _, tt := range []struct {
		dest string
		size int
	}{{"", 1}, {"x", gateway.MaxMessage + 1}, {strings.Repeat("d", gateway.MaxMessage+1), 1}} {
		if err := g.Send(tt.dest, make([]byte, tt.size)); err == nil {
			t.Errorf("Send(%d-byte dest, %d bytes) accepted", len(tt.dest), tt.size)
		}
	}
	// A destination longer than any identity is dropped as unknown.
	if err := g.Send(strings.Repeat("d", gateway.MaxIdentity+1), []byte("m")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, srv, "unknown drop", func(st gateway.Stats) bool { return st.DroppedUnknown == 1 })
}

// TestGatewayShutdown: peers inside the gateway do not hold up a shutdown,
// and nothing leaks (goleak checks at the end of the package).
func TestGatewayShutdown(t *testing.T) {
	srv := servertest.Start(t)
	_, a := join(t, srv, "a")
	_, b := join(t, srv, "b")
	if err := a.Send("b", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	recv(t, b)
	srv.Stop()
	if _, err := a.Recv(servertest.Context(t)); err == nil || errors.Is(err, client.ErrGatewayClosed) {
		t.Fatalf("after shutdown: %v", err)
	}
	if st := srv.Srv.GatewayStats(); st.Peers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGatewayClientCloseUnread: a peer whose application never calls Recv
// still leaves cleanly (Gateway.Close) or closes (Client.Close) without
// hanging, with its receive buffer full.
func TestGatewayClientCloseUnread(t *testing.T) {
	srv := servertest.Start(t)
	_, sender := join(t, srv, "sender")
	lazy1C, lazy1 := join(t, srv, "lazy1")
	lazy2C, _ := join(t, srv, "lazy2")
	const n = 600 // more than the client's receive buffer
	for i := range n {
		for _, to := range []string{"lazy1", "lazy2"} {
			if err := sender.Send(to, fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitStats(t, srv, "deliveries", func(st gateway.Stats) bool { return st.Delivered+st.Dropped() == 2*n })
	if err := lazy1.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := lazy1C.Echo(servertest.Context(t), "awake"); err != nil || got != "awake" {
		t.Fatalf("after leaving: %q %v", got, err)
	}
	if err := lazy2C.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	waitStats(t, srv, "lazy2 gone", func(st gateway.Stats) bool { return st.Peers == 1 })
}

// TestGatewayWriteTimeout: a receiver that accepts nothing for the write
// timeout is disconnected, and what was queued for it is counted as a write
// error; its sender is unaffected.
func TestGatewayWriteTimeout(t *testing.T) {
	srv := servertest.StartOpts(t, []server.Option{server.WithGatewayLimits(gateway.Limits{WriteTimeout: 100 * time.Millisecond})})
	stuck := stalledPeer(t, srv, "stuck")
	_, sender := join(t, srv, "sender")
	big := bytes.Repeat([]byte("w"), 32*1024)
	for srv.Srv.GatewayStats().DroppedWriteErr == 0 {
		if err := sender.Send("stuck", big); err != nil {
			t.Fatal(err)
		}
		if servertest.Context(t).Err() != nil {
			t.Fatal("the stuck receiver was never disconnected")
		}
	}
	servertest.ExpectClosed(t, stuck)
	waitStats(t, srv, "the stuck peer to leave", func(st gateway.Stats) bool { return st.Peers == 1 })
	if err := sender.Send("sender", []byte("still fine")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, sender); string(got) != "still fine" {
		t.Fatalf("got %q", got)
	}
}

// TestGatewayMetrics: the gateway's counters are exported to Prometheus, and
// XS_GATEWAY is counted by its result.
func TestGatewayMetrics(t *testing.T) {
	m := metrics.New()
	srv := servertest.StartOpts(t, []server.Option{server.WithMetrics(m)})
	_, a := join(t, srv, "a")
	if err := a.Send("a", []byte("self")); err != nil {
		t.Fatal(err)
	}
	recv(t, a)
	if err := a.Send("nobody", []byte("lost")); err != nil {
		t.Fatal(err)
	}
	c := srv.Dial(t)
	if _, err := c.Gateway(servertest.Context(t), ""); err == nil {
		t.Fatal("empty identity accepted")
	}
	waitStats(t, srv, "the drop", func(st gateway.Stats) bool { return st.DroppedUnknown == 1 })

	// The command counter moves just after the reply leaves, so poll the
	// scrape until it shows everything (or the step's deadline passes).
	scrapeUntil(t, m, []string{
		`tfd_gateway_messages_received_total 2`,
		`tfd_gateway_messages_delivered_total 1`,
		`tfd_gateway_messages_dropped_total{reason="unknown_identity"} 1`,
		`tfd_gateway_messages_dropped_total{reason="queue_full"} 0`,
		`tfd_gateway_registrations_total 1`,
		`tfd_gateway_peers 1`,
		`tfd_commands_total{command="XS_GATEWAY",result="2"} 1`,
	})
}
