package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	nodes := startCluster(t, 2, func(i int) string { return "127.0.0.1:1034" + string(rune('5'+i)) })
	nodes[1].SetLoad(func() Load { return Load{Sessions: 3} })
	p := newPeer("p", 4)
	attach(t, nodes[1].Bus(), "x", p)
	if err := nodes[0].Bus().Send("x", []byte("m")); err != nil {
		t.Fatal(err)
	}
	p.expect(t, "m")
	// node1's next heartbeat carries its load.
	deadline := time.Now().Add(10 * time.Second)
	for loaded := false; !loaded; {
		for _, in := range nodes[0].Directory().Status().Nodes {
			loaded = loaded || (in.Node == "node1" && in.Load == 3)
		}
		if time.Now().After(deadline) {
			t.Fatal("node1's load never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(nodes[0].Collector())
	want := `
# HELP tfd_cluster_nodes Live nodes in this node's directory, itself included.
# TYPE tfd_cluster_nodes gauge
tfd_cluster_nodes 2
# HELP tfd_cluster_node_load Load figure (sessions) of each live node, from its last heartbeat.
# TYPE tfd_cluster_node_load gauge
tfd_cluster_node_load{node="node0"} 0
tfd_cluster_node_load{node="node1"} 3
# HELP tfd_cluster_identities Gateway identities held across the cluster, in this node's view.
# TYPE tfd_cluster_identities gauge
tfd_cluster_identities 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tfd_cluster_nodes", "tfd_cluster_node_load", "tfd_cluster_identities"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(metricWith(t, reg, "tfd_cluster_bus_messages_total", "remote_sent")); got != 1 {
		t.Fatalf("remote_sent %v, want 1", got)
	}
}

// metricWith gathers reg and returns the named counter with the given label
// value as a collector for testutil.ToFloat64.
func metricWith(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return nil
}
