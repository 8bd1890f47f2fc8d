// Package metrics exposes tfd's Prometheus metrics on an optional HTTP listener
// (--metrics-listen). It uses github.com/prometheus/client_golang, the reference
// Prometheus client: its registry, collectors and HTTP handler are what every
// Prometheus server and dashboard expects, so nothing here is hand-rolled.
//
// All methods are safe on a nil *Metrics (they do nothing), so the server calls
// them unconditionally and metrics cost nothing when they are off.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds tfd's collectors on a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	sessionsOpen     prometheus.Gauge
	sessionsTotal    prometheus.Counter
	handshakeFailed  *prometheus.CounterVec
	commands         *prometheus.CounterVec
	bytes            *prometheus.CounterVec
	transferDuration *prometheus.HistogramVec
	transferBytes    *prometheus.CounterVec
}

// New creates the collectors and registers them, with Go runtime and process
// collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sessionsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "tfd", Name: "sessions_open", Help: "Sessions open now."})
	m.sessionsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "tfd", Name: "sessions_total", Help: "Sessions accepted since start."})
	m.handshakeFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tfd", Name: "handshake_failures_total", Help: "Handshakes that failed, by reason."},
		[]string{"reason"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tfd", Name: "commands_total",
		Help: "Commands run, by name and result (OK, UNKNOWN, a FAILED code, or RAW for replies without a status line)."},
		[]string{"command", "result"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tfd", Name: "session_bytes_total", Help: "Bytes received (in) and sent (out) by ended sessions."},
		[]string{"direction"})
	m.transferDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "tfd", Name: "transfer_duration_seconds", Help: "Duration of file transfers, by command.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)},
		[]string{"command"})
	m.transferBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tfd", Name: "transfer_bytes_total", Help: "File bytes moved by transfers, by command."},
		[]string{"command"})
	m.reg.MustRegister(m.sessionsOpen, m.sessionsTotal, m.handshakeFailed, m.commands, m.bytes,
		m.transferDuration, m.transferBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, so other packages (gateway, cluster) can
// register their own collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// MustRegister adds collectors to the registry (no-op on nil).
func (m *Metrics) MustRegister(cs ...prometheus.Collector) {
	if m != nil {
		m.reg.MustRegister(cs...)
	}
}

// SessionOpened counts a new session.
func (m *Metrics) SessionOpened() {
	if m != nil {
		m.sessionsOpen.Inc()
		m.sessionsTotal.Inc()
	}
}

// SessionClosed counts a session's end and its traffic.
func (m *Metrics) SessionClosed(rx, tx int64) {
	if m != nil {
		m.sessionsOpen.Dec()
		m.bytes.WithLabelValues("in").Add(float64(rx))
		m.bytes.WithLabelValues("out").Add(float64(tx))
	}
}

// HandshakeFailed counts a failed handshake. reason is one of a small fixed set
// (version, rsa, hash, limit, io).
func (m *Metrics) HandshakeFailed(reason string) {
	if m != nil {
		m.handshakeFailed.WithLabelValues(reason).Inc()
	}
}

// Result labels for Command.
const (
	ResultOK      = "OK"
	ResultUnknown = "UNKNOWN"
	ResultRaw     = "RAW"
)

// FailedResult is the result label of a FAILED reply with code.
func FailedResult(code int) string { return strconv.Itoa(code) }

// Command counts one command. name must come from the command table (or be
// "UNKNOWN"), never raw client input, to bound the label's values.
func (m *Metrics) Command(name, result string) {
	if m != nil {
		m.commands.WithLabelValues(name, result).Inc()
	}
}

// Transfer records one finished file transfer.
func (m *Metrics) Transfer(command string, d time.Duration, n int64) {
	if m != nil {
		m.transferDuration.WithLabelValues(command).Observe(d.Seconds())
		m.transferBytes.WithLabelValues(command).Add(float64(n))
	}
}

// Handler returns the /metrics HTTP handler.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Serve serves /metrics on addr until ctx ends. It returns the bound address
// through ready (useful with port 0) before serving.
func (m *Metrics) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	if ready != nil {
		ready(ln.Addr())
	}
	err = srv.Serve(ln)
	if !stop() {
		// Serve returns as soon as Shutdown begins: wait until it has
		// finished (or given up), so nothing runs after Serve returns.
		<-shutDown
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics serve: %w", err)
	}
	return nil
}
