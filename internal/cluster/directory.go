package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tfd-project/tfd/internal/tlb"
)

// NodeInfo is one node's heartbeat, and its row in the directory.
type NodeInfo struct {
	Node string `json:"node"`
	// Addr is the client-facing TCP address, "ip:port".
	Addr string `json:"addr"`
	// Sessions is the number of open TFProtocol sessions.
	Sessions int `json:"sessions"`
	// GatewayPeers is the number of identities held on the node.
	GatewayPeers int `json:"gateway_peers"`
	// Load is the figure TLB balances on (today: Sessions; gateway peers are
	// sessions too).
	Load int `json:"load"`
	// Incarnation changes when a node restarts under the same id.
	Incarnation int64 `json:"incarnation"`
	// IntervalMS is the sender's heartbeat interval; it expires after
	// Missed of them.
	IntervalMS int64 `json:"interval_ms"`
	// Claims and Digest summarise the sender's identity claims so that others
	// notice a divergence (lost events, a healed partition) and resync.
	Claims int    `json:"claims"`
	Digest uint64 `json:"digest"`
	// Profile is the sender's Options.Profile.
	Profile string `json:"profile,omitempty"`
	// SentUnixNano is when the heartbeat was made (sender's clock).
	SentUnixNano int64 `json:"sent_unix_nano"`
	// Age is how long ago the heartbeat arrived (status output only).
	AgeMS int64 `json:"age_ms"`
}

// Status is what `tfd cluster status` shows: the answering node's view.
type Status struct {
	Self  string     `json:"self"`
	Nodes []NodeInfo `json:"nodes"`
}

type dirEntry struct {
	info  NodeInfo
	seen  time.Time
	picks []time.Time // when we handed the node out, newest last
}

// heard records a heartbeat that arrived at now: picks made more than one
// of the node's intervals before it are in its session count by now (the
// client connected right after the pick), so they stop counting. Picks are
// never forgotten by time alone, so a late heartbeat cannot make a busy node
// look idle.
func (e *dirEntry) heard(info NodeInfo, now time.Time, def time.Duration) {
	e.info = info
	e.seen = now
	iv := time.Duration(info.IntervalMS) * time.Millisecond
	if iv <= 0 {
		iv = def
	}
	// The heartbeat counts sessions that connected before it was sent: use
	// the sender's timestamp when it is earlier than our receipt (a delayed
	// delivery), and one interval of slack for the client's connect.
	cut := now
	if sent := time.Unix(0, info.SentUnixNano); info.SentUnixNano > 0 && sent.Before(cut) {
		cut = sent
	}
	cut = cut.Add(-iv)
	i := 0
	for i < len(e.picks) && e.picks[i].Before(cut) {
		i++
	}
	e.picks = e.picks[i:]
}

// Directory is the node table built from heartbeats. It is the cluster's
// tlb.Pool: every Next answers with the least-loaded live node.
type Directory struct {
	n *Node

	loadMu sync.Mutex
	load   func() Load

	mu        sync.Mutex
	nodes     map[string]*dirEntry
	changed   chan struct{} // closed and replaced on every membership change
	lastHB    time.Time
	advertise string
	// gone remembers nodes that left or expired for a while, so that
	// messages of theirs still in flight (on other subscriptions, so in
	// any order) cannot bring their claims, or a node that said goodbye,
	// back.
	gone map[string]tombstone
}

// tombstoneTTL is how long a departed node is remembered.
const tombstoneTTL = time.Minute

type tombstone struct {
	inc int64
	at  time.Time
	bye bool // it left on purpose: that incarnation never comes back
}

var _ tlb.Pool = (*Directory)(nil)

func newDirectory(n *Node) *Directory {
	return &Directory{n: n, nodes: map[string]*dirEntry{}, changed: make(chan struct{}), advertise: n.opts.Advertise, gone: map[string]tombstone{}}
}

func (d *Directory) setLoad(f func() Load) {
	d.loadMu.Lock()
	d.load = f
	d.loadMu.Unlock()
}

func (d *Directory) currentLoad() Load {
	d.loadMu.Lock()
	f := d.load
	d.loadMu.Unlock()
	if f == nil {
		return Load{}
	}
	return f()
}

// notifyLocked wakes waiters; d.mu held.
func (d *Directory) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// beat publishes this node's heartbeat and records it locally (NoEcho: our
// own messages do not come back).
func (d *Directory) beat() {
	sent := time.Now() // before the load is read: picks after it are not in it
	l := d.currentLoad()
	claims, digest := d.n.bus.localSummary()
	d.mu.Lock()
	addr := d.advertise
	d.mu.Unlock()
	info := NodeInfo{
		Node:         d.n.id,
		Addr:         addr,
		Sessions:     l.Sessions,
		GatewayPeers: claims,
		Load:         l.Sessions,
		Incarnation:  d.n.inc,
		IntervalMS:   d.n.opts.Heartbeat.Milliseconds(),
		Claims:       claims,
		Digest:       digest,
		SentUnixNano: sent.UnixNano(),
		Profile:      d.n.opts.Profile,
	}
	data, err := json.Marshal(info)
	if err != nil {
		d.n.log.Error("heartbeat encode", "err", err)
		return
	}
	d.mu.Lock()
	d.recordLocked(info, time.Now())
	d.lastHB = time.Now()
	d.mu.Unlock()
	if err := d.n.nc.Publish(d.n.subject("hb"), data); err != nil {
		d.n.log.Debug("heartbeat publish", "err", err)
	}
}

// recordLocked stores a heartbeat; it returns whether the node is new, and
// false for stale when the heartbeat is a late one from an incarnation that
// said goodbye.
func (d *Directory) recordLocked(info NodeInfo, now time.Time) (isNew, fresh bool) {
	if g, ok := d.gone[info.Node]; ok {
		if g.bye && g.inc == info.Incarnation {
			return false, false
		}
		delete(d.gone, info.Node)
	}
	e, ok := d.nodes[info.Node]
	if !ok {
		e = &dirEntry{}
		d.nodes[info.Node] = e
	}
	e.heard(info, now, d.n.opts.Heartbeat)
	if !ok {
		d.notifyLocked()
	}
	return !ok, true
}

func (d *Directory) onHeartbeat(m *nats.Msg) {
	var info NodeInfo
	if err := json.Unmarshal(m.Data, &info); err != nil || !nodeIDRe.MatchString(info.Node) {
		d.n.log.Warn("bad heartbeat", "err", err)
		return
	}
	if info.Node == d.n.id {
		if info.Incarnation != d.n.inc {
			d.n.log.Error("another node uses this node id", "node_id", info.Node)
		}
		return
	}
	d.mu.Lock()
	old, known := d.nodes[info.Node]
	restarted := known && old.info.Incarnation != info.Incarnation
	isNew, fresh := d.recordLocked(info, time.Now())
	if !fresh {
		d.mu.Unlock()
		return
	}
	// A newcomer learns about us at once instead of after up to one interval.
	answer := isNew && time.Since(d.lastHB) > d.n.opts.Heartbeat/4
	d.mu.Unlock()
	if isNew {
		d.n.log.Info("node joined", "peer", info.Node, "addr", info.Addr)
		if info.Profile != d.n.opts.Profile {
			d.n.log.Warn("node has another public key, proto or hash: clients TLB sends there will fail the handshake",
				"peer", info.Node, "profile", info.Profile, "ours", d.n.opts.Profile)
		}
	}
	if restarted {
		// Its old claims died with the old process.
		d.n.log.Info("node restarted", "peer", info.Node)
		d.n.bus.dropNode(info.Node)
	}
	d.n.bus.checkDigest(info)
	if answer {
		d.beat()
	}
}

type bye struct {
	Node        string `json:"node"`
	Incarnation int64  `json:"incarnation"`
}

func (d *Directory) onBye(m *nats.Msg) {
	var b bye
	if err := json.Unmarshal(m.Data, &b); err != nil || b.Node == d.n.id {
		return
	}
	d.remove(b.Node, "left", &b.Incarnation)
}

func (d *Directory) sayBye() {
	data, _ := json.Marshal(bye{Node: d.n.id, Incarnation: d.n.inc})
	if err := d.n.nc.Publish(d.n.subject("bye"), data); err != nil {
		d.n.log.Debug("bye publish", "err", err)
	}
}

// remove forgets a node and its claims; byeInc is the incarnation that said
// goodbye (nil: it expired). Waiters are woken once the claims are gone.
func (d *Directory) remove(node, why string, byeInc *int64) {
	d.mu.Lock()
	e, ok := d.nodes[node]
	if ok {
		delete(d.nodes, node)
	}
	t := tombstone{at: time.Now()}
	if byeInc != nil {
		t.inc, t.bye = *byeInc, true
	} else if ok {
		t.inc = e.info.Incarnation
	}
	if ok || byeInc != nil {
		d.gone[node] = t
	}
	d.mu.Unlock()
	if !ok {
		return
	}
	d.n.log.Info("node "+why, "peer", node)
	d.n.bus.dropNode(node)
	d.mu.Lock()
	d.notifyLocked()
	d.mu.Unlock()
}

// isGone reports whether node left or expired and has not been heard since.
func (d *Directory) isGone(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.gone[node]
	return ok
}

// expire drops nodes that missed their heartbeats.
func (d *Directory) expire(now time.Time) {
	var gone []string
	d.mu.Lock()
	for id, e := range d.nodes {
		if id == d.n.id {
			continue
		}
		iv := time.Duration(e.info.IntervalMS) * time.Millisecond
		if iv <= 0 {
			iv = d.n.opts.Heartbeat
		}
		if now.Sub(e.seen) > time.Duration(d.n.opts.Missed)*iv {
			gone = append(gone, id)
		}
	}
	d.mu.Unlock()
	for _, id := range gone {
		d.remove(id, "expired", nil)
	}
	d.mu.Lock()
	for id, t := range d.gone {
		if now.Sub(t.at) > tombstoneTTL {
			delete(d.gone, id)
		}
	}
	d.mu.Unlock()
}

// Status returns the live nodes, sorted by id.
func (d *Directory) Status() Status {
	now := time.Now()
	d.mu.Lock()
	st := Status{Self: d.n.id, Nodes: make([]NodeInfo, 0, len(d.nodes))}
	for _, e := range d.nodes {
		in := e.info
		in.AgeMS = now.Sub(e.seen).Milliseconds()
		st.Nodes = append(st.Nodes, in)
	}
	d.mu.Unlock()
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Node < st.Nodes[j].Node })
	return st
}

// liveOthers is the number of live nodes besides this one.
func (d *Directory) liveOthers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.nodes)
	if _, ok := d.nodes[d.n.id]; ok {
		n--
	}
	return n
}

// Live returns the ids of the live nodes, sorted.
func (d *Directory) Live() []string {
	st := d.Status()
	ids := make([]string, len(st.Nodes))
	for i, in := range st.Nodes {
		ids[i] = in.Node
	}
	return ids
}

func (d *Directory) waitFor(ctx context.Context, ok func(live int) bool) error {
	for {
		d.mu.Lock()
		live, ch := len(d.nodes), d.changed
		d.mu.Unlock()
		if ok(live) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for nodes (have %d): %w", live, ctx.Err())
		}
	}
}

// NewPicker returns a picker; every Next answers the currently least-loaded
// live node, so one picker per session is only for the tlb.Pool contract.
func (d *Directory) NewPicker() tlb.Picker { return picker{d} }

type picker struct{ d *Directory }

func (p picker) Next() (string, error) { return p.d.Pick() }

// Pick returns the tuple of the least-loaded live node ("4 ip;port" or
// "6 ip;port"), choosing at random among equals. A node's load is its last
// heartbeat's figure plus the tuples this node handed out for it that the
// heartbeat cannot include yet, so a burst of new sessions spreads before the
// heartbeats report them (a session may be counted twice for up to one
// interval; that errs towards spreading, never towards piling onto one node).
func (d *Directory) Pick() (string, error) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	// Every node may be answering TLB at the same time, each seeing only its
	// own picks: if each closed a load gap on its own, together they would
	// overshoot it k-fold and the cluster would oscillate. So each counts
	// its picks k times (k = live nodes): all together close the gap, and a
	// lone answering node closes it over a few heartbeats instead of at once.
	k := 0
	for _, e := range d.nodes {
		if e.info.Addr != "" {
			k++
		}
	}
	var best []*dirEntry
	bestLoad := 0
	for _, e := range d.nodes {
		if e.info.Addr == "" {
			continue
		}
		l := e.info.Load + k*len(e.picks)
		switch {
		case len(best) == 0 || l < bestLoad:
			best, bestLoad = append(best[:0], e), l
		case l == bestLoad:
			best = append(best, e)
		}
	}
	if len(best) == 0 {
		return "", tlb.ErrEmpty
	}
	e := best[rand.IntN(len(best))]
	t, err := tupleFor(e.info.Addr)
	if err != nil {
		return "", fmt.Errorf("%w: node %s: %v", tlb.ErrEmpty, e.info.Node, err)
	}
	e.picks = append(e.picks, now)
	return t, nil
}

// tupleFor turns "ip:port" into the TLB tuple "4 ip;port" or "6 ip;port".
func tupleFor(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("cluster: advertise address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("cluster: advertise address %q: need a concrete IP address clients can reach", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("cluster: advertise address %q: bad port", addr)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return "4 " + ip4.String() + ";" + port, nil
	}
	return "6 " + ip.String() + ";" + port, nil
}

func (n *Node) onStatusRequest(m *nats.Msg) {
	data, err := json.Marshal(n.dir.Status())
	if err != nil {
		return
	}
	if err := m.Respond(data); err != nil {
		n.log.Debug("status respond", "err", err)
	}
}

// RequestStatus asks any node on the NATS at nc for its view of the cluster.
func RequestStatus(ctx context.Context, nc *nats.Conn, prefix string) (Status, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var st Status
	m, err := nc.RequestWithContext(ctx, prefix+".status", nil)
	if err != nil {
		return st, fmt.Errorf("cluster status request: %w", err)
	}
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return st, fmt.Errorf("cluster status reply: %w", err)
	}
	return st, nil
}
