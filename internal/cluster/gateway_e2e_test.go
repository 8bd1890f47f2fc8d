package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/servertest"
)

// joinGateway opens a real session on s and enters XS_GATEWAY as id.
func joinGateway(t *testing.T, s *servertest.Server, id string) *client.Gateway {
	t.Helper()
	c := s.Dial(t)
	g, err := c.Gateway(servertest.Context(t), id)
	if err != nil {
		t.Fatalf("gateway %q on %s: %v", id, s.Addr, err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func gwRecv(t *testing.T, g *client.Gateway, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := g.Recv(ctx)
	if err != nil {
		t.Fatalf("recv (want %q): %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// gwNothing checks that nothing arrives at g within a short grace (a message
// sent before an exchange that did arrive elsewhere).
func gwNothing(t *testing.T, g *client.Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got, err := g.Recv(ctx); err == nil {
		t.Fatalf("unexpected delivery %q", got)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv: %v", err)
	}
}

func nodesOf(servers []clusterServer) []*Node {
	out := make([]*Node, len(servers))
	for i, cs := range servers {
		out[i] = cs.node
	}
	return out
}

// TestGatewaySessionsAcrossNodes runs XS_GATEWAY sessions through real tfd
// servers on three cluster nodes: both directions across nodes, a duplicate
// identity on another node, and a node stopped while the others go on.
func TestGatewaySessionsAcrossNodes(t *testing.T) {
	servers := startServers(t)
	nodes := nodesOf(servers)
	alice := joinGateway(t, servers[0].srv, "alice")
	bob := joinGateway(t, servers[2].srv, "bob")
	waitHolder(t, nodes, "alice", nodes[0].ID())
	waitHolder(t, nodes, "bob", nodes[2].ID())

	for i := range 20 {
		if err := alice.Send("bob", []byte(fmt.Sprint("a>b ", i))); err != nil {
			t.Fatal(err)
		}
		if err := bob.Send("alice", []byte(fmt.Sprint("b>a ", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		gwRecv(t, bob, fmt.Sprint("a>b ", i))
		gwRecv(t, alice, fmt.Sprint("b>a ", i))
	}
	// To nobody: dropped and counted on the sender's node.
	if err := alice.Send("nobody", []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for servers[0].srv.Srv.GatewayStats().DroppedUnknown != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("unknown-identity drop not counted: %+v", servers[0].srv.Srv.GatewayStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := bytes.Repeat([]byte{0xa5}, 300_000)
	if err := alice.Send("bob", big); err != nil {
		t.Fatal(err)
	}
	gwRecv(t, bob, string(big))

	// The newest registration wins across nodes: bob on node1 replaces bob
	// on node2, which stops receiving.
	bob2 := joinGateway(t, servers[1].srv, "bob")
	waitHolder(t, nodes, "bob", nodes[1].ID())
	if err := alice.Send("bob", []byte("to the new bob")); err != nil {
		t.Fatal(err)
	}
	gwRecv(t, bob2, "to the new bob")
	gwNothing(t, bob)

	// Stop node2 (its server, then its node): alice and bob2 go on.
	carol := joinGateway(t, servers[2].srv, "carol")
	waitHolder(t, nodes, "carol", nodes[2].ID())
	servers[2].srv.Stop()
	servers[2].node.Close()
	for _, n := range nodes[:2] {
		ctx := ctxFor(t, 5*time.Second)
		if err := n.Directory().waitFor(ctx, func(live int) bool { return live == 2 }); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			tup, err := n.Directory().Pick()
			if err != nil {
				t.Fatal(err)
			}
			if addrOf(t, tup) == servers[2].srv.Addr {
				t.Fatal("TLB answers with the stopped node")
			}
		}
	}
	// UDP_TLB answers from the same pool.
	for range 10 {
		tup, err := client.UDPTLB(servertest.Context(t), servers[0].srv.UDPAddr)
		if err != nil {
			t.Fatal(err)
		}
		if a := addrOf(t, tup); a == servers[2].srv.Addr || (a != servers[0].srv.Addr && a != servers[1].srv.Addr) {
			t.Fatalf("UDP_TLB answered %q", tup)
		}
	}
	waitHolder(t, nodes[:2], "carol", "")
	if err := bob2.Send("alice", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	gwRecv(t, alice, "still here")
	if err := alice.Send("bob", []byte("me too")); err != nil {
		t.Fatal(err)
	}
	gwRecv(t, bob2, "me too")
	_ = carol
}
