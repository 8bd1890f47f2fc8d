package cluster

import "github.com/prometheus/client_golang/prometheus"

var (
	descNodes = prometheus.NewDesc("tfd_cluster_nodes",
		"Live nodes in this node's directory, itself included.", nil, nil)
	descLoad = prometheus.NewDesc("tfd_cluster_node_load",
		"Load figure (sessions) of each live node, from its last heartbeat.", []string{"node"}, nil)
	descIdentities = prometheus.NewDesc("tfd_cluster_identities",
		"Gateway identities held across the cluster, in this node's view.", nil, nil)
	descBusMsgs = prometheus.NewDesc("tfd_cluster_bus_messages_total",
		"Gateway messages through the cluster bus: delivered to a local peer without NATS (local), published to another node (remote_sent), received from another node and queued (remote_delivered).",
		[]string{"path"}, nil)
	descBusDrops = prometheus.NewDesc("tfd_cluster_bus_remote_drops_total",
		"Messages from other nodes that this node could not deliver, by reason.", []string{"reason"}, nil)
	descEvictions = prometheus.NewDesc("tfd_cluster_evictions_total",
		"Local gateway peers evicted by a newer registration of their identity (here or on another node).", nil, nil)
)

// Collector returns a Prometheus collector for the node: membership, loads
// and the bus's counters (register it with the server's metrics).
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodes, descLoad, descIdentities, descBusMsgs, descBusDrops, descEvictions} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.dir.Status()
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(len(st.Nodes)))
	for _, in := range st.Nodes {
		ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, float64(in.Load), in.Node)
	}
	b := c.n.bus
	b.mu.RLock()
	ids := len(b.dir)
	b.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(descIdentities, prometheus.GaugeValue, float64(ids))
	s := b.Stats()
	ch <- prometheus.MustNewConstMetric(descBusMsgs, prometheus.CounterValue, float64(s.LocalDelivered), "local")
	ch <- prometheus.MustNewConstMetric(descBusMsgs, prometheus.CounterValue, float64(s.RemoteSent), "remote_sent")
	ch <- prometheus.MustNewConstMetric(descBusMsgs, prometheus.CounterValue, float64(s.RemoteDelivered), "remote_delivered")
	ch <- prometheus.MustNewConstMetric(descBusDrops, prometheus.CounterValue, float64(s.RemoteDropQueueFull), "queue_full")
	ch <- prometheus.MustNewConstMetric(descBusDrops, prometheus.CounterValue, float64(s.RemoteDropGone), "peer_gone")
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(s.Evictions))
}
