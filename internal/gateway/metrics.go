package gateway

import "github.com/prometheus/client_golang/prometheus"

// Collector exports a Stats source as Prometheus metrics, read at scrape time:
//
//	tfd_gateway_messages_received_total
//	tfd_gateway_messages_delivered_total
//	tfd_gateway_messages_dropped_total{reason}
//	tfd_gateway_registrations_total
//	tfd_gateway_evictions_total
//	tfd_gateway_peers
type Collector struct {
	stats                        func() Stats
	received, delivered, dropped *prometheus.Desc
	registered, evicted, peers   *prometheus.Desc
}

// NewCollector returns a Collector reading stats (for instance
// server.Server.GatewayStats).
func NewCollector(stats func() Stats) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("tfd", "gateway", name), help, labels, nil)
	}
	return &Collector{
		stats:      stats,
		received:   d("messages_received_total", "Messages read from gateway senders."),
		delivered:  d("messages_delivered_total", "Messages written to gateway receivers."),
		dropped:    d("messages_dropped_total", "Messages dropped, by reason.", "reason"),
		registered: d("registrations_total", "Identities registered."),
		evicted:    d("evictions_total", "Registrations replaced by a newer one of the same identity."),
		peers:      d("peers", "Sessions inside the gateway now."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.received, c.delivered, c.dropped, c.registered, c.evicted, c.peers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.received, st.Received)
	counter(c.delivered, st.Delivered)
	for _, r := range []struct {
		reason string
		v      uint64
	}{
		{"unknown_identity", st.DroppedUnknown},
		{"queue_full", st.DroppedQueueFull},
		{"peer_gone", st.DroppedPeerGone},
		{"too_large", st.DroppedTooLarge},
		{"invalid_size", st.DroppedInvalid},
		{"write_error", st.DroppedWriteErr},
		{"other", st.DroppedOther},
	} {
		counter(c.dropped, r.v, r.reason)
	}
	counter(c.registered, st.Registered)
	counter(c.evicted, st.Evicted)
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(st.Peers))
}
