package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/cluster"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
)

func TestTupleAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"4 10.0.0.1;10346", "10.0.0.1:10346"},
		{"6 ::1;10345", "[::1]:10345"},
		{"4 10.0.0.1", ""},
		{"5 10.0.0.1;1", ""},
		{"4 ;1", ""},
		{"4 10.0.0.1;", ""},
		{"", ""},
	} {
		got, err := tupleAddr(tc.in)
		if (tc.want == "") != (err != nil) || got != tc.want {
			t.Errorf("tupleAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestBenchGatewayCrossNode runs tf bench gateway -cross-node against one
// node of a two-node cluster: the second peers land on the other node, found
// through TLB, and every message crosses.
func TestBenchGatewayCrossNode(t *testing.T) {
	var nodes []*cluster.Node
	var srvs []*servertest.Server
	for i := range 2 {
		o := cluster.Options{NodeID: fmt.Sprint("b", i), ClusterListen: "127.0.0.1:0", Heartbeat: 100 * time.Millisecond, Missed: 8}
		if i > 0 {
			o.Peers = []string{nodes[0].RouteURL()}
		}
		n, err := cluster.Start(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		s := servertest.StartOpts(t, []server.Option{server.WithBus(n.Bus()), server.WithTLBPool(n.Directory())})
		n.SetLoad(func() cluster.Load { return cluster.Load{Sessions: s.Srv.ActiveSessions()} })
		if err := n.SetAdvertise(s.Addr); err != nil {
			t.Fatal(err)
		}
		nodes, srvs = append(nodes, n), append(srvs, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitNodes(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	// Both advertised addresses known to node 0 before TLB is asked.
	for {
		st := nodes[0].Directory().Status()
		if len(st.Nodes) == 2 && st.Nodes[0].Addr != "" && st.Nodes[1].Addr != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}

	code, out, errs := runTF(t, srvs[0], "bench", "gateway", "-pairs", "2", "-size", "100", "-duration", "300ms", "-cross-node", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct{ Figures []figure }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fig := map[string]float64{}
	for _, f := range res.Figures {
		fig[f.Name] = f.Value
	}
	if fig["delivered"] == 0 || fig["delivered"] != fig["sent"] || fig["dropped"] != 0 {
		t.Fatalf("figures %v", fig)
	}
	// Each node delivered half: the a-sides' messages on node 1, the
	// b-sides' on node 0.
	d0, d1 := srvs[0].Srv.GatewayStats().Delivered, srvs[1].Srv.GatewayStats().Delivered
	if d0 == 0 || d1 == 0 || float64(d0+d1) != fig["delivered"] {
		t.Fatalf("deliveries node0 %d node1 %d, bench %v", d0, d1, fig["delivered"])
	}
	if code, _, _ := runTF(t, srvs[0], "bench", "gateway", "-cross-node", "-addr2", srvs[1].Addr); code != exitUsage {
		t.Errorf("-cross-node with -addr2: exit %d", code)
	}
	// A server outside any cluster has no TLB pool: -cross-node fails.
	lone := servertest.Start(t)
	if code, _, errs := runTF(t, lone, "bench", "gateway", "-duration", "100ms", "-cross-node"); code == exitOK {
		t.Errorf("-cross-node against a lone server succeeded: %s", errs)
	}
}
