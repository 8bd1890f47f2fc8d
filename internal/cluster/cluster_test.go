package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/tfd-project/tfd/internal/gateway"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test timing: short heartbeats so membership changes show quickly, and a
// generous miss count so a starved -race run on shared cores does not expire
// a live node.
const (
	testHeartbeat = 100 * time.Millisecond
	testMissed    = 8
)

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("TFD_CLUSTER_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startNode starts one embedded-NATS node on a free loopback port, routed to
// peers.
func startNode(t *testing.T, id, advertise string, peers ...string) *Node {
	t.Helper()
	n, err := Start(Options{
		NodeID:        id,
		ClusterListen: "127.0.0.1:0",
		Peers:         peers,
		Advertise:     advertise,
		Heartbeat:     testHeartbeat,
		Missed:        testMissed,
		Log:           testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startCluster starts size nodes; node 0 is the bootstrap peer of the others.
// It returns once every node lists every other one (routes are up and
// heartbeats flow).
func startCluster(t *testing.T, size int, advertise func(i int) string) []*Node {
	t.Helper()
	nodes := make([]*Node, size)
	for i := range nodes {
		var peers []string
		if i > 0 {
			peers = []string{nodes[0].RouteURL()}
		}
		adv := ""
		if advertise != nil {
			adv = advertise(i)
		}
		nodes[i] = startNode(t, fmt.Sprintf("node%d", i), adv, peers...)
	}
	ctx := ctxFor(t, 20*time.Second)
	for _, n := range nodes {
		if err := n.WaitNodes(ctx, size); err != nil {
			t.Fatalf("%s: %v (live %v)", n.ID(), err, n.Directory().Live())
		}
	}
	return nodes
}

// fakePeer is a gateway.Peer with a bounded queue.
type fakePeer struct {
	name    string
	q       chan []byte
	evicted chan struct{}
	once    sync.Once
}

func newPeer(name string, depth int) *fakePeer {
	return &fakePeer{name: name, q: make(chan []byte, depth), evicted: make(chan struct{})}
}

func (p *fakePeer) Enqueue(msg []byte) error {
	select {
	case p.q <- msg:
		return nil
	default:
		return gateway.ErrQueueFull
	}
}

func (p *fakePeer) Evicted() { p.once.Do(func() { close(p.evicted) }) }

func (p *fakePeer) isEvicted() bool {
	select {
	case <-p.evicted:
		return true
	default:
		return false
	}
}

func (p *fakePeer) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-p.q:
		if string(got) != want {
			t.Fatalf("%s got %q, want %q", p.name, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no message (want %q)", p.name, want)
	}
}

func (p *fakePeer) expectNothing(t *testing.T) {
	t.Helper()
	select {
	case got := <-p.q:
		t.Fatalf("%s got unexpected %q", p.name, got)
	default:
	}
}

func attach(t *testing.T, b *Bus, id string, p gateway.Peer) func() {
	t.Helper()
	detach, err := b.Attach(id, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(detach)
	return detach
}

// waitHolder waits until every node's directory says identity is held by
// node want ("" = by nobody).
func waitHolder(t *testing.T, nodes []*Node, identity, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for {
			got, ok := n.Bus().Holder(identity)
			if (want == "" && !ok) || (ok && got == want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: holder of %q is %q (%v), want %q", n.ID(), identity, got, ok, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestCrossNodeDelivery(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	alice, bob, carol := newPeer("alice", 16), newPeer("bob", 16), newPeer("carol", 16)
	// Identities are any byte strings: NATS wildcards, dots, spaces, NULs,
	// non-UTF-8, long.
	bobID := "bob.*.>\x00 \xff" + string(make([]byte, 5000))
	attach(t, nodes[0].Bus(), "alice", alice)
	attach(t, nodes[2].Bus(), bobID, bob)
	attach(t, nodes[0].Bus(), "carol", carol)
	waitHolder(t, nodes, "alice", "node0")
	waitHolder(t, nodes, bobID, "node2")

	before0, before2 := nodes[0].Bus().Stats(), nodes[2].Bus().Stats()
	if err := nodes[0].Bus().Send(bobID, []byte("hi bob")); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, "hi bob")
	if err := nodes[2].Bus().Send("alice", []byte("hi alice")); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "hi alice")
	// From the third node, which holds nobody.
	if err := nodes[1].Bus().Send("alice", []byte("from node1")); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "from node1")
	// Binary payload, empty payload.
	payload := []byte{0, 1, 2, 0xff, '\n'}
	if err := nodes[0].Bus().Send(bobID, payload); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, string(payload))
	if err := nodes[0].Bus().Send(bobID, nil); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, "")

	// Local to local: delivered without NATS.
	if err := nodes[0].Bus().Send("carol", []byte("local")); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "local")
	after0, after2 := nodes[0].Bus().Stats(), nodes[2].Bus().Stats()
	if got := after0.RemoteSent - before0.RemoteSent; got != 3 {
		t.Errorf("node0 published %d messages, want 3 (the local one must not go through NATS)", got)
	}
	if got := after0.LocalDelivered - before0.LocalDelivered; got != 1 {
		t.Errorf("node0 local deliveries %d, want 1", got)
	}
	if got := after2.RemoteDelivered - before2.RemoteDelivered; got != 3 {
		t.Errorf("node2 remote deliveries %d, want 3", got)
	}
}

func TestUnknownIdentityDropped(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	err := nodes[0].Bus().Send("nobody", []byte("x"))
	if !errors.Is(err, gateway.ErrUnknownIdentity) {
		t.Fatalf("send to nobody: %v, want ErrUnknownIdentity", err)
	}
	if s := nodes[0].Bus().Stats(); s.DropUnknown != 1 || s.RemoteSent != 0 {
		t.Fatalf("stats %+v: want one unknown-identity drop and nothing published", s)
	}

	// After a release the identity is unknown everywhere again.
	p := newPeer("p", 4)
	detach := attach(t, nodes[1].Bus(), "gone", p)
	waitHolder(t, nodes, "gone", "node1")
	detach()
	detach() // twice is harmless
	waitHolder(t, nodes, "gone", "")
	if err := nodes[0].Bus().Send("gone", []byte("x")); !errors.Is(err, gateway.ErrUnknownIdentity) {
		t.Fatalf("send after release: %v, want ErrUnknownIdentity", err)
	}
}

func TestQueueFullAndTooLarge(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	slow := newPeer("slow", 1)
	attach(t, nodes[0].Bus(), "slow", slow)
	if err := nodes[0].Bus().Send("slow", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Bus().Send("slow", []byte("2")); !errors.Is(err, gateway.ErrQueueFull) {
		t.Fatalf("local send to a full queue: %v, want ErrQueueFull", err)
	}
	big := make([]byte, DefaultMaxPayload+1)
	waitHolder(t, nodes, "slow", "node0")
	if err := nodes[1].Bus().Send("slow", big); !errors.Is(err, gateway.ErrTooLarge) {
		t.Fatalf("remote send over max payload: %v, want ErrTooLarge", err)
	}
	// A full queue on the receiving node is counted there.
	if err := nodes[1].Bus().Send("slow", []byte("3")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for nodes[0].Bus().Stats().RemoteDropQueueFull != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("remote queue-full drop not counted: %+v", nodes[0].Bus().Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	slow.expect(t, "1")
}

func TestDuplicateIdentityAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	first, second := newPeer("first", 16), newPeer("second", 16)
	detachFirst := attach(t, nodes[0].Bus(), "dup", first)
	waitHolder(t, nodes, "dup", "node0")
	attach(t, nodes[1].Bus(), "dup", second)
	select {
	case <-first.evicted:
	case <-time.After(10 * time.Second):
		t.Fatal("the older holder on node0 was not evicted")
	}
	if second.isEvicted() {
		t.Fatal("the newest registration was evicted")
	}
	waitHolder(t, nodes, "dup", "node1")
	for i, n := range nodes {
		if err := n.Bus().Send("dup", []byte(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
		second.expect(t, fmt.Sprint("m", i))
	}
	first.expectNothing(t)
	// The evicted holder's late detach does not release the new holder.
	detachFirst()
	waitHolder(t, nodes, "dup", "node1")
	if err := nodes[2].Bus().Send("dup", []byte("still")); err != nil {
		t.Fatal(err)
	}
	second.expect(t, "still")
}

func TestConcurrentClaimsConverge(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for round := range 5 {
		id := fmt.Sprint("race", round)
		a, b := newPeer("a", 4), newPeer("b", 4)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); attach(t, nodes[0].Bus(), id, a) }()
		go func() { defer wg.Done(); attach(t, nodes[1].Bus(), id, b) }()
		wg.Wait()
		// Exactly one wins, and every node agrees which.
		var winner *fakePeer
		var wnode string
		deadline := time.Now().Add(10 * time.Second)
		for {
			ea, eb := a.isEvicted(), b.isEvicted()
			if ea != eb {
				winner, wnode = a, "node0"
				if ea {
					winner, wnode = b, "node1"
				}
				break
			}
			if ea && eb {
				t.Fatal("both registrations evicted")
			}
			if time.Now().After(deadline) {
				t.Fatal("neither registration evicted")
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitHolder(t, nodes, id, wnode)
		if err := nodes[2].Bus().Send(id, []byte("w")); err != nil {
			t.Fatal(err)
		}
		winner.expect(t, "w")
	}
}

func TestDirectoryHeartbeats(t *testing.T) {
	nodes := startCluster(t, 3, func(i int) string { return fmt.Sprintf("127.0.0.%d:%d", i+1, 10345+i) })
	nodes[1].SetLoad(func() Load { return Load{Sessions: 100} })
	p := newPeer("p", 1)
	attach(t, nodes[1].Bus(), "x", p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := nodes[0].Directory().Status()
		var got *NodeInfo
		for i := range st.Nodes {
			if st.Nodes[i].Node == "node1" {
				got = &st.Nodes[i]
			}
		}
		if got != nil && got.Sessions == 100 && got.Load == 100 && got.GatewayPeers == 1 && got.Addr == "127.0.0.2:10346" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node0's view of node1: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The least-loaded nodes are node0 and node2: picks alternate between
	// them (each pick counts until the next heartbeat) and avoid node1.
	seen := map[string]int{}
	for range 12 {
		tup, err := nodes[0].Directory().NewPicker().Next()
		if err != nil {
			t.Fatal(err)
		}
		seen[tup]++
	}
	if seen["4 127.0.0.2;10346"] != 0 || seen["4 127.0.0.1;10345"] == 0 || seen["4 127.0.0.3;10347"] == 0 {
		t.Fatalf("12 picks with loads 0,100,0: %v, want only (and both) idle nodes", seen)
	}
}

func TestNodeStopRestart(t *testing.T) {
	nodes := startCluster(t, 3, func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 20000+i) })
	a, b := newPeer("a", 64), newPeer("b", 64)
	attach(t, nodes[0].Bus(), "a", a)
	attach(t, nodes[1].Bus(), "b", b)
	waitHolder(t, nodes, "a", "node0")
	waitHolder(t, nodes, "b", "node1")
	gone := newPeer("gone", 4)
	attach(t, nodes[2].Bus(), "on2", gone)
	waitHolder(t, nodes, "on2", "node2")

	exchange := func(tag string) {
		t.Helper()
		if err := nodes[0].Bus().Send("b", []byte(tag+"a>b")); err != nil {
			t.Fatal(err)
		}
		b.expect(t, tag+"a>b")
		if err := nodes[1].Bus().Send("a", []byte(tag+"b>a")); err != nil {
			t.Fatal(err)
		}
		a.expect(t, tag+"b>a")
	}
	exchange("before")

	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			if crash {
				nodes[2].kill() // no goodbye: it must expire
			} else {
				nodes[2].Close()
			}
			stopped := time.Now()
			for _, n := range nodes[:2] {
				ctx := ctxFor(t, 5*time.Second)
				if err := n.Directory().waitFor(ctx, func(live int) bool { return live == 2 }); err != nil {
					t.Fatalf("%s still lists %v %v after the stop", n.ID(), n.Directory().Live(), time.Since(stopped))
				}
				for range 30 {
					tup, err := n.Directory().Pick()
					if err != nil {
						t.Fatal(err)
					}
					if tup == "4 127.0.0.1;20002" {
						t.Fatalf("%s: TLB still answers with the stopped node", n.ID())
					}
				}
				// Its identities are gone with it.
				if _, ok := n.Bus().Holder("on2"); ok {
					t.Fatalf("%s still routes to the stopped node's identity", n.ID())
				}
			}
			exchange("during")

			// Restart under the same id, bootstrapping from node1 this time.
			nodes[2] = startNode(t, "node2", "127.0.0.1:20002", nodes[1].RouteURL())
			ctx := ctxFor(t, 20*time.Second)
			for _, n := range nodes {
				if err := n.WaitNodes(ctx, 3); err != nil {
					t.Fatal(err)
				}
			}
			c := newPeer("c", 4)
			attach(t, nodes[2].Bus(), "on2", c)
			waitHolder(t, nodes, "on2", "node2")
			if err := nodes[0].Bus().Send("on2", []byte("welcome back")); err != nil {
				t.Fatal(err)
			}
			c.expect(t, "welcome back")
			// The newcomer learns the others' claims from their heartbeats'
			// digests (a resync), not instantly.
			waitHolder(t, nodes, "a", "node0")
			if err := nodes[2].Bus().Send("a", []byte("rejoined")); err != nil {
				t.Fatal(err)
			}
			a.expect(t, "rejoined")
			exchange("after")
		})
	}
}

func TestTupleFor(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1:10346", "4 10.0.0.1;10346"},
		{"[::1]:10345", "6 ::1;10345"},
		{"[2001:db8::5]:1", "6 2001:db8::5;1"},
		{"[::ffff:10.1.2.3]:99", "4 10.1.2.3;99"},
		{"0.0.0.0:10345", ""},
		{"[::]:10345", ""},
		{"host.example:10345", ""},
		{"10.0.0.1", ""},
		{"10.0.0.1:0", ""},
		{"10.0.0.1:70000", ""},
		{"10.0.0.1:http", ""},
	} {
		got, err := tupleFor(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("tupleFor(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("tupleFor(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"neither listen nor url", Options{}},
		{"both listen and url", Options{ClusterListen: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:4222"}},
		{"peers with url", Options{NATSURL: "nats://127.0.0.1:4222", Peers: []string{"nats-route://a:6222"}}},
		{"bad peer", Options{ClusterListen: "127.0.0.1:0", Peers: []string{"a:6222"}}},
		{"bad node id", Options{ClusterListen: "127.0.0.1:0", NodeID: "a.b"}},
		{"bad advertise", Options{ClusterListen: "127.0.0.1:0", Advertise: "0.0.0.0:1"}},
		{"bad prefix", Options{ClusterListen: "127.0.0.1:0", Prefix: "a.*"}},
		{"heartbeat too short", Options{ClusterListen: "127.0.0.1:0", Heartbeat: time.Millisecond}},
		{"negative heartbeat", Options{ClusterListen: "127.0.0.1:0", Heartbeat: -time.Second}},
	} {
		if err := tc.o.Validate(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	o := Options{ClusterListen: "127.0.0.1:0"}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if !nodeIDRe.MatchString(o.NodeID) || o.Heartbeat != DefaultHeartbeat || o.Missed != DefaultMissed || o.Prefix != DefaultPrefix {
		t.Fatalf("defaults not filled: %+v", o)
	}
}

func TestClusterListenInUse(t *testing.T) {
	n := startNode(t, "first", "")
	_, err := Start(Options{ClusterListen: n.ClusterAddr()})
	if err == nil {
		t.Fatal("a second node on the same cluster port started")
	}
}

type logBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func TestProfileMismatchLogged(t *testing.T) {
	var logs [2]logBuf
	start := func(i int, profile string, peers ...string) *Node {
		n, err := Start(Options{
			NodeID: fmt.Sprint("p", i), ClusterListen: "127.0.0.1:0", Peers: peers, Profile: profile,
			Heartbeat: testHeartbeat, Missed: testMissed,
			Log: slog.New(slog.NewTextHandler(&logs[i], nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a := start(0, "aaaa")
	b := start(1, "bbbb", a.RouteURL())
	ctx := ctxFor(t, 20*time.Second)
	for _, n := range []*Node{a, b} {
		if err := n.WaitNodes(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	// The warning follows the join (which WaitNodes saw) on the same
	// goroutine.
	deadline := time.Now().Add(10 * time.Second)
	for i := range logs {
		for !strings.Contains(logs[i].String(), "another public key") {
			if time.Now().After(deadline) {
				t.Fatalf("node %d did not warn about the other profile:\n%s", i, logs[i].String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestLostClaimRepaired: a node whose view lost a claim (an event dropped
// during a partition) gets it back from the digest in the holder's heartbeat.
func TestLostClaimRepaired(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	p := newPeer("p", 4)
	attach(t, nodes[0].Bus(), "x", p)
	waitHolder(t, nodes, "x", "node0")
	b := nodes[1].Bus()
	b.mu.Lock()
	b.deleteOwnerLocked("x")
	b.setOwnerLocked("phantom", owner{"node0", 1}) // and one it never had
	b.mu.Unlock()
	waitHolder(t, nodes, "x", "node0")
	waitHolder(t, nodes, "phantom", "")
	if err := b.Send("x", []byte("repaired")); err != nil {
		t.Fatal(err)
	}
	p.expect(t, "repaired")
}

// TestFastRestartSameID: a node that comes back under the same id before it
// expired loses its old claims (its incarnation changed) everywhere.
func TestFastRestartSameID(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	p := newPeer("p", 4)
	attach(t, nodes[1].Bus(), "old", p)
	waitHolder(t, nodes, "old", "node1")
	nodes[1].kill()
	nodes[1] = startNode(t, "node1", "", nodes[0].RouteURL())
	waitHolder(t, nodes[:1], "old", "")
	if got := nodes[0].Directory().Live(); len(got) != 2 {
		t.Fatalf("live %v after a fast restart", got)
	}
}

// TestExternalNATS: nodes that share an existing NATS deployment instead of
// embedding one.
func TestExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	var nodes []*Node
	for i := range 2 {
		n, err := Start(Options{NodeID: fmt.Sprint("ext", i), NATSURL: ns.ClientURL(), Advertise: fmt.Sprintf("127.0.0.1:%d", 3000+i),
			Heartbeat: testHeartbeat, Missed: testMissed, Log: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	ctx := ctxFor(t, 20*time.Second)
	for _, n := range nodes {
		if err := n.WaitNodes(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	a, b := newPeer("a", 4), newPeer("b", 4)
	attach(t, nodes[0].Bus(), "a", a)
	attach(t, nodes[1].Bus(), "b", b)
	waitHolder(t, nodes, "a", "ext0")
	waitHolder(t, nodes, "b", "ext1")
	if err := nodes[0].Bus().Send("b", []byte("ab")); err != nil {
		t.Fatal(err)
	}
	b.expect(t, "ab")
	if err := nodes[1].Bus().Send("a", []byte("ba")); err != nil {
		t.Fatal(err)
	}
	a.expect(t, "ba")

	// Any node answers a status request on the shared NATS.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := RequestStatus(ctx, nc, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].Node != "ext0" || st.Nodes[1].Addr != "127.0.0.1:3001" {
		t.Fatalf("status %+v", st)
	}
}

// TestRegistrationVisibleOnReturn: once Attach returns, every live node
// routes to the new holder, so a message sent right away is not dropped as
// unknown.
func TestRegistrationVisibleOnReturn(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for i := range 20 {
		id := fmt.Sprint("fresh", i)
		p := newPeer(id, 1)
		attach(t, nodes[i%3].Bus(), id, p)
		from := nodes[(i+1)%3]
		if err := from.Bus().Send(id, []byte("now")); err != nil {
			t.Fatalf("send from %s right after %s registered %s: %v", from.ID(), nodes[i%3].ID(), id, err)
		}
		p.expect(t, "now")
	}
}

// TestLateMessagesOfDepartedNode: a heartbeat or claim of a node that said
// goodbye, processed after the goodbye (they travel on other subscriptions),
// does not bring it back; a new incarnation under the same id does come back.
func TestLateMessagesOfDepartedNode(t *testing.T) {
	nodes := startCluster(t, 2, func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 30000+i) })
	d := nodes[0].Directory()
	var old NodeInfo
	for _, in := range d.Status().Nodes {
		if in.Node == "node1" {
			old = in
		}
	}
	nodes[1].Close()
	if err := d.waitFor(ctxFor(t, 5*time.Second), func(live int) bool { return live == 1 }); err != nil {
		t.Fatal(err)
	}
	hb, _ := json.Marshal(old)
	d.onHeartbeat(&nats.Msg{Data: hb})
	cl, _ := json.Marshal(claim{ID: []byte("late"), Node: "node1", TS: time.Now().UnixNano()})
	nodes[0].Bus().onClaim(&nats.Msg{Data: cl})
	if live := d.Live(); len(live) != 1 {
		t.Fatalf("a late heartbeat resurrected the node: %v", live)
	}
	if _, ok := nodes[0].Bus().Holder("late"); ok {
		t.Fatal("a late claim of the departed node was recorded")
	}
	// A new incarnation is welcome.
	old.Incarnation++
	hb, _ = json.Marshal(old)
	d.onHeartbeat(&nats.Msg{Data: hb})
	if live := d.Live(); len(live) != 2 {
		t.Fatalf("a new incarnation was not accepted: %v", live)
	}
}

// TestClusterSecret: nodes with the secret form a cluster; a node with the
// wrong one is refused at the route (the seed logs the authentication
// error) and never listed.
func TestClusterSecret(t *testing.T) {
	var seedLog logBuf
	start := func(id, secret string, log *slog.Logger, peers ...string) *Node {
		n, err := Start(Options{NodeID: id, ClusterListen: "127.0.0.1:0", Peers: peers, ClusterSecret: secret,
			Heartbeat: testHeartbeat, Missed: testMissed, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	seed := start("seed", "s3cret", slog.New(slog.NewTextHandler(&seedLog, nil)))
	member := start("member", "s3cret", nil, seed.RouteURL())
	// third knows only the seed: it reaches member by an implicit (gossiped)
	// route, which must carry the secret too (NATS routes are one hop, so
	// member hears third only over a direct route).
	third := start("third", "s3cret", nil, seed.RouteURL())
	ctx := ctxFor(t, 20*time.Second)
	for _, n := range []*Node{seed, member, third} {
		if err := n.WaitNodes(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	intruder := start("intruder", "guess", nil, seed.RouteURL())
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(seedLog.String(), "authentication error") {
		if time.Now().After(deadline) {
			t.Fatalf("the seed did not refuse the intruder's route:\n%s", seedLog.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range []*Node{seed, member, third} {
		if live := n.Directory().Live(); len(live) != 3 {
			t.Fatalf("%s lists %v", n.ID(), live)
		}
	}
	if live := intruder.Directory().Live(); len(live) != 1 || intruder.NumRoutes() != 0 {
		t.Fatalf("the intruder joined: %v, %d routes", live, intruder.NumRoutes())
	}
	o := Options{NATSURL: "nats://127.0.0.1:4222", ClusterSecret: "x"}
	if o.Validate() == nil {
		t.Fatal("a cluster secret with an external NATS was accepted")
	}
}
