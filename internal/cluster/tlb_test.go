package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
)

// clusterServer is a real tfd server whose TLB pool and bus are its node's.
type clusterServer struct {
	node *Node
	srv  *servertest.Server
}

// startServers runs a three-node cluster, each node with a real tfd server
// that advertises its listener and reports its sessions.
func startServers(t *testing.T) []clusterServer {
	t.Helper()
	nodes := startCluster(t, 3, nil)
	out := make([]clusterServer, len(nodes))
	for i, n := range nodes {
		s := servertest.StartOpts(t, []server.Option{server.WithBus(n.Bus()), server.WithTLBPool(n.Directory())})
		n.SetLoad(func() Load { return Load{Sessions: s.Srv.ActiveSessions()} })
		n.Bus().CountRemoteDrops(s.Srv.GatewayCounters())
		if err := n.SetAdvertise(s.Addr); err != nil {
			t.Fatal(err)
		}
		out[i] = clusterServer{n, s}
	}
	// Wait until every node can answer with every other one.
	for _, cs := range out {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := cs.node.Directory().Status()
			ok := len(st.Nodes) == len(out)
			for _, in := range st.Nodes {
				ok = ok && in.Addr != ""
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", cs.node.ID(), st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

// addrOf maps a TLB tuple "4 ip;port" back to "ip:port".
func addrOf(t *testing.T, tuple string) string {
	t.Helper()
	v, ok := strings.CutPrefix(tuple, "4 ")
	if !ok {
		t.Fatalf("tuple %q", tuple)
	}
	return strings.Replace(v, ";", ":", 1)
}

// TestTLBSpreadsSessions opens 300 real sessions, each on the node that the
// TLB command (asked of the three nodes in turn) answered, and checks that no
// node ends up with more than 40 % of them.
func TestTLBSpreadsSessions(t *testing.T) {
	servers := startServers(t)
	byAddr := map[string]*servertest.Server{}
	for _, cs := range servers {
		byAddr[cs.srv.Addr] = cs.srv
	}
	const sessions = 300
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One control session per node asks TLB (the real command); the answer
	// decides where each new session goes.
	ctl := make([]*client.Client, len(servers))
	for i, cs := range servers {
		ctl[i] = cs.srv.Dial(t)
	}
	clients := make([]*client.Client, 0, sessions)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	// Sessions arrive in small concurrent bursts, as new clients would.
	const burst = 10
	for i := 0; i < sessions; i += burst {
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		for j := range burst {
			tuple, err := ctl[(i+j)%len(ctl)].TLB(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s := byAddr[addrOf(t, tuple)]
			if s == nil {
				t.Fatalf("TLB answered %q, not one of the nodes", tuple)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := client.Dial(ctx, s.Addr, s.Options())
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	counts := make([]int, len(servers))
	total := 0
	for i, cs := range servers {
		counts[i] = cs.srv.Srv.ActiveSessions() - 1 // less the control session
		total += counts[i]
	}
	if total != sessions {
		t.Fatalf("%d sessions open, want %d (%v)", total, sessions, counts)
	}
	for i, c := range counts {
		if c*100 > sessions*40 {
			t.Errorf("node%d holds %d of %d sessions (> 40 %%): %v", i, c, sessions, counts)
		}
	}
	t.Logf("sessions per node: %v", counts)

	// The heartbeats report them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := servers[0].node.Directory().Status()
		sum := 0
		for _, in := range st.Nodes {
			sum += in.Sessions
		}
		if sum == sessions+len(ctl) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeats report %d sessions, want %d: %+v", sum, sessions, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLBAvoidsLoadedNode: with sessions open on one node, new picks go to
// the others until the load evens out.
func TestTLBAvoidsLoadedNode(t *testing.T) {
	servers := startServers(t)
	for range 6 {
		servers[0].srv.Dial(t)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got NodeInfo
		for _, in := range servers[1].node.Directory().Status().Nodes {
			if in.Node == servers[0].node.ID() {
				got = in
			}
		}
		if got.Load == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node0's heartbeat says %+v, want load 6", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]int{}
	p := servers[1].node.Directory().NewPicker()
	// Each pick counts 3 (one per live node) until the next heartbeat: 4 picks
	// bring the idle nodes to 6 at most.
	for range 4 {
		tup, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		seen[addrOf(t, tup)]++
	}
	if seen[servers[0].srv.Addr] != 0 || seen[servers[1].srv.Addr] == 0 || seen[servers[2].srv.Addr] == 0 {
		t.Fatalf("4 picks with loads 6,0,0: %v, want only (and both) idle nodes", seen)
	}
}
