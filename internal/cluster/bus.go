package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tfd-project/tfd/internal/gateway"
)

// claim is an identity registration (or, on <p>.release, its end). The
// newest registration wins everywhere: claims are ordered by (TS, Node), TS
// from a hybrid logical clock that never runs behind a claim the node has
// seen.
type claim struct {
	ID   []byte `json:"id"`
	Node string `json:"node"`
	TS   int64  `json:"ts"`
}

type owner struct {
	node string
	ts   int64
}

func (o owner) newerThan(p owner) bool {
	if o.ts != p.ts {
		return o.ts > p.ts
	}
	return o.node > p.node
}

type holder struct {
	p  gateway.Peer
	ts int64
}

// nodeClaims is the set of identities a node holds in our view, with an
// order-independent digest kept up to date.
type nodeClaims struct {
	ids    map[string]int64
	digest uint64
}

func claimHash(id string, ts int64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ts))
	h.Write(b[:])
	return h.Sum64()
}

// BusStats counts what the bus did on this node.
type BusStats struct {
	LocalDelivered  uint64 // sent to a peer on this node (no NATS)
	RemoteSent      uint64 // published to the holder's node
	RemoteDelivered uint64 // received from another node and queued
	Evictions       uint64 // local holders evicted by a newer registration
	// Drops by reason; Remote* are drops on this node of messages that came
	// from another node (the sender could not know).
	DropUnknown, DropQueueFull, DropGone, DropTooLarge uint64
	RemoteDropQueueFull, RemoteDropGone                uint64
}

// Bus is the NATS-backed gateway.Bus. Local-to-local delivery never touches
// NATS; a message for an identity held elsewhere is published once to the
// holder node's subject. Every node keeps a replicated identity→node
// directory from claim/release events, repaired by digest-triggered resyncs,
// so the sender knows whether anyone holds the identity (and drops and counts
// ErrUnknownIdentity if nobody does, as on one node).
type Bus struct {
	n   *Node
	clk hlc

	mu     sync.RWMutex
	closed bool
	local  map[string]*holder // identities held on this node
	dir    map[string]owner   // every identity the cluster holds
	byNode map[string]*nodeClaims

	syncing sync.Map       // node id → struct{}: a resync in flight
	syncWG  sync.WaitGroup // resync goroutines

	drops atomic.Pointer[gateway.Counters] // where remote drops are counted

	stats struct {
		localDelivered, remoteSent, remoteDelivered, evictions atomic.Uint64
		dropUnknown, dropQueueFull, dropGone, dropTooLarge     atomic.Uint64
		rDropQueueFull, rDropGone                              atomic.Uint64
	}
}

var _ gateway.Bus = (*Bus)(nil)

// ErrBusClosed is returned by Attach after Close.
var ErrBusClosed = errors.New("cluster: bus closed")

func newBus(n *Node) *Bus {
	return &Bus{n: n, local: map[string]*holder{}, dir: map[string]owner{}, byNode: map[string]*nodeClaims{}}
}

// setOwnerLocked records id → o, replacing any previous owner; b.mu held.
func (b *Bus) setOwnerLocked(id string, o owner) {
	b.deleteOwnerLocked(id)
	b.dir[id] = o
	nc := b.byNode[o.node]
	if nc == nil {
		nc = &nodeClaims{ids: map[string]int64{}}
		b.byNode[o.node] = nc
	}
	nc.ids[id] = o.ts
	nc.digest ^= claimHash(id, o.ts)
}

func (b *Bus) deleteOwnerLocked(id string) {
	old, ok := b.dir[id]
	if !ok {
		return
	}
	delete(b.dir, id)
	if nc := b.byNode[old.node]; nc != nil {
		if ts, ok := nc.ids[id]; ok {
			delete(nc.ids, id)
			nc.digest ^= claimHash(id, ts)
		}
		if len(nc.ids) == 0 {
			delete(b.byNode, old.node)
		}
	}
}

// Attach makes p the holder of identity cluster-wide: a previous holder on
// this node is evicted at once, one on another node when our claim reaches
// it.
func (b *Bus) Attach(identity string, p gateway.Peer) (func(), error) {
	ts := b.clk.now()
	h := &holder{p: p, ts: ts}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBusClosed
	}
	prev := b.local[identity]
	b.local[identity] = h
	b.setOwnerLocked(identity, owner{b.n.id, ts})
	b.mu.Unlock()
	if prev != nil {
		b.stats.evictions.Add(1)
		prev.p.Evicted()
	}
	b.announceClaim(claim{ID: []byte(identity), Node: b.n.id, TS: ts})
	var once sync.Once
	return func() { once.Do(func() { b.release(identity, h) }) }, nil
}

func (b *Bus) release(identity string, h *holder) {
	b.mu.Lock()
	if b.local[identity] != h {
		b.mu.Unlock()
		return
	}
	delete(b.local, identity)
	if o, ok := b.dir[identity]; ok && o == (owner{b.n.id, h.ts}) {
		b.deleteOwnerLocked(identity)
	}
	closed := b.closed
	b.mu.Unlock()
	if !closed {
		b.publishClaim("release", claim{ID: []byte(identity), Node: b.n.id, TS: h.ts})
	}
}

func (b *Bus) publishClaim(kind string, c claim) {
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	if err := b.n.nc.Publish(b.n.subject(kind), data); err != nil {
		b.n.log.Debug("publish "+kind, "err", err)
	}
}

// Send delivers msg to identity's holder: directly when it is on this node,
// else one NATS publish to the holder's node.
func (b *Bus) Send(identity string, msg []byte) error {
	b.mu.RLock()
	h := b.local[identity]
	o, ok := b.dir[identity]
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		b.stats.dropGone.Add(1)
		return fmt.Errorf("%w: bus closed", gateway.ErrPeerGone)
	}
	if h != nil {
		err := h.p.Enqueue(msg)
		b.countLocal(err)
		return err
	}
	if !ok {
		b.stats.dropUnknown.Add(1)
		return gateway.ErrUnknownIdentity
	}
	payload := make([]byte, 0, binary.MaxVarintLen64+len(identity)+len(msg))
	payload = binary.AppendUvarint(payload, uint64(len(identity)))
	payload = append(payload, identity...)
	payload = append(payload, msg...)
	if int64(len(payload)) > b.n.nc.MaxPayload() {
		b.stats.dropTooLarge.Add(1)
		return fmt.Errorf("%w: %d bytes over the NATS max payload %d", gateway.ErrTooLarge, len(payload), b.n.nc.MaxPayload())
	}
	if err := b.n.nc.Publish(b.n.subject("n", o.node, "m"), payload); err != nil {
		b.stats.dropGone.Add(1)
		return fmt.Errorf("%w: publish to node %s: %v", gateway.ErrPeerGone, o.node, err)
	}
	b.stats.remoteSent.Add(1)
	return nil
}

func (b *Bus) countLocal(err error) {
	switch {
	case err == nil:
		b.stats.localDelivered.Add(1)
	case errors.Is(err, gateway.ErrQueueFull):
		b.stats.dropQueueFull.Add(1)
	default:
		b.stats.dropGone.Add(1)
	}
}

// onMessage delivers a message another node sent to an identity held here.
func (b *Bus) onMessage(m *nats.Msg) {
	l, k := binary.Uvarint(m.Data)
	if k <= 0 || l > uint64(len(m.Data)-k) {
		b.n.log.Warn("malformed gateway message from NATS", "subject", m.Subject)
		return
	}
	msg := m.Data[k+int(l):]
	b.mu.RLock()
	h := b.local[string(m.Data[k:k+int(l)])]
	b.mu.RUnlock()
	var err error
	if h == nil {
		// Released or evicted while the message was in flight.
		err = gateway.ErrPeerGone
	} else {
		err = h.p.Enqueue(msg)
	}
	switch {
	case err == nil:
		b.stats.remoteDelivered.Add(1)
		return
	case errors.Is(err, gateway.ErrQueueFull):
		b.stats.rDropQueueFull.Add(1)
	default:
		b.stats.rDropGone.Add(1)
	}
	// The sender's Send returned nil: count the drop here, where the
	// server's counters (and metrics) see it.
	if c := b.drops.Load(); c != nil {
		c.Drop(err, 1)
	}
}

// CountRemoteDrops makes the bus count, in c, the messages from other nodes
// that this node could not deliver (the sender's Send could not know); tfd
// passes the server's gateway counters, so that across the cluster every
// message is counted once as delivered or dropped.
func (b *Bus) CountRemoteDrops(c *gateway.Counters) { b.drops.Store(c) }

func (b *Bus) onClaim(m *nats.Msg) {
	var c claim
	if err := json.Unmarshal(m.Data, &c); err != nil || c.Node == b.n.id {
		return
	}
	b.applyClaim(string(c.ID), owner{c.Node, c.TS})
	if m.Reply != "" {
		// Applied: the announcing node may return from Attach.
		if err := m.Respond(nil); err != nil {
			b.n.log.Debug("claim ack", "err", err)
		}
	}
}

// ClaimAckTimeout bounds how long Attach waits for the other live nodes to
// acknowledge a registration.
const ClaimAckTimeout = 250 * time.Millisecond

// announceClaim publishes a registration and waits (at most ClaimAckTimeout)
// until every other live node has applied it, so that once the gateway
// answers the registration, a peer anywhere in the cluster can send to the
// identity (a message sent right after would otherwise race the claim and be
// dropped as unknown). A node that does not answer in time (dying, not yet
// expired) only delays the registration.
func (b *Bus) announceClaim(c claim) {
	want := b.n.dir.liveOthers()
	if want == 0 {
		b.publishClaim("claim", c)
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	inbox := b.n.nc.NewRespInbox()
	sub, err := b.n.nc.SubscribeSync(inbox)
	if err != nil {
		b.publishClaim("claim", c)
		return
	}
	defer sub.Unsubscribe()
	if err := b.n.nc.PublishRequest(b.n.subject("claim"), inbox, data); err != nil {
		b.n.log.Debug("publish claim", "err", err)
		return
	}
	deadline := time.Now().Add(ClaimAckTimeout)
	for got := 0; got < want; got++ {
		if _, err := sub.NextMsg(time.Until(deadline)); err != nil {
			b.n.log.Debug("claim not acknowledged by every node", "acks", got, "want", want, "err", err)
			return
		}
	}
}

// applyClaim records a remote claim if it is the newest, evicting our own
// holder of the identity if it loses.
func (b *Bus) applyClaim(id string, o owner) {
	b.clk.observe(o.ts)
	if b.n.dir.isGone(o.node) {
		// A late claim of a departed node; if the node is in fact alive,
		// its next heartbeat brings it back and the digest resync its
		// claims.
		return
	}
	b.mu.Lock()
	if cur, ok := b.dir[id]; ok && !o.newerThan(cur) {
		b.mu.Unlock()
		return
	}
	b.setOwnerLocked(id, o)
	h := b.local[id]
	if h != nil {
		delete(b.local, id)
	}
	b.mu.Unlock()
	if h != nil {
		b.stats.evictions.Add(1)
		h.p.Evicted()
	}
}

func (b *Bus) onRelease(m *nats.Msg) {
	var c claim
	if err := json.Unmarshal(m.Data, &c); err != nil || c.Node == b.n.id {
		return
	}
	b.mu.Lock()
	if cur, ok := b.dir[string(c.ID)]; ok && cur == (owner{c.Node, c.TS}) {
		b.deleteOwnerLocked(string(c.ID))
	}
	b.mu.Unlock()
}

// dropNode forgets every identity a departed node held.
func (b *Bus) dropNode(node string) {
	if node == b.n.id {
		return
	}
	b.mu.Lock()
	if nc := b.byNode[node]; nc != nil {
		for id := range nc.ids {
			b.deleteOwnerLocked(id)
		}
	}
	b.mu.Unlock()
}

// localSummary is our claim count and digest, for the heartbeat.
func (b *Bus) localSummary() (int, uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	nc := b.byNode[b.n.id]
	if nc == nil {
		return 0, 0
	}
	return len(nc.ids), nc.digest
}

// checkDigest compares a heartbeat's claim summary with our view of that
// node and, on a mismatch, fetches the node's claims.
func (b *Bus) checkDigest(info NodeInfo) {
	b.mu.RLock()
	cnt, dg := 0, uint64(0)
	if nc := b.byNode[info.Node]; nc != nil {
		cnt, dg = len(nc.ids), nc.digest
	}
	closed := b.closed
	b.mu.RUnlock()
	if closed || (cnt == info.Claims && dg == info.Digest) {
		return
	}
	if _, busy := b.syncing.LoadOrStore(info.Node, struct{}{}); busy {
		return
	}
	// Not on the subscription's goroutine: a request must not block
	// heartbeat processing.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.syncing.Delete(info.Node)
		return
	}
	b.syncWG.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.syncWG.Done()
		defer b.syncing.Delete(info.Node)
		b.resync(info.Node)
	}()
}

type syncReply struct {
	Node   string  `json:"node"`
	Claims []claim `json:"claims"`
}

func (b *Bus) onSyncRequest(m *nats.Msg) {
	b.mu.RLock()
	r := syncReply{Node: b.n.id}
	for id, h := range b.local {
		r.Claims = append(r.Claims, claim{ID: []byte(id), Node: b.n.id, TS: h.ts})
	}
	b.mu.RUnlock()
	data, err := json.Marshal(r)
	if err != nil {
		return
	}
	if err := m.Respond(data); err != nil {
		b.n.log.Debug("sync respond", "err", err)
	}
}

// resync replaces our view of node's claims with what it reports.
func (b *Bus) resync(node string) {
	timeout := 2 * b.n.opts.Heartbeat
	if timeout < time.Second {
		timeout = time.Second
	}
	m, err := b.n.nc.Request(b.n.subject("n", node, "sync"), nil, timeout)
	if err != nil {
		b.n.log.Debug("resync request", "peer", node, "err", err)
		return
	}
	var r syncReply
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Node != node {
		return
	}
	have := make(map[string]int64, len(r.Claims))
	for _, c := range r.Claims {
		have[string(c.ID)] = c.TS
	}
	b.mu.Lock()
	if nc := b.byNode[node]; nc != nil {
		for id, ts := range nc.ids {
			if t, ok := have[id]; !ok || t != ts {
				b.deleteOwnerLocked(id)
			}
		}
	}
	b.mu.Unlock()
	for id, ts := range have {
		b.applyClaim(id, owner{node, ts})
	}
	b.n.log.Debug("resynced claims", "peer", node, "claims", len(have))
}

// Holder reports which node holds identity in this node's view.
func (b *Bus) Holder(identity string) (node string, ok bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, ok := b.dir[identity]
	return o.node, ok
}

// LocalPeers returns the number of identities held on this node.
func (b *Bus) LocalPeers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.local)
}

// Stats returns the bus's counters.
func (b *Bus) Stats() BusStats {
	s := &b.stats
	return BusStats{
		LocalDelivered: s.localDelivered.Load(), RemoteSent: s.remoteSent.Load(),
		RemoteDelivered: s.remoteDelivered.Load(), Evictions: s.evictions.Load(),
		DropUnknown: s.dropUnknown.Load(), DropQueueFull: s.dropQueueFull.Load(),
		DropGone: s.dropGone.Load(), DropTooLarge: s.dropTooLarge.Load(),
		RemoteDropQueueFull: s.rDropQueueFull.Load(),
		RemoteDropGone:      s.rDropGone.Load(),
	}
}

// Close stops the bus: later sends are dropped as ErrPeerGone and Attach
// fails. The node closes it; calling it again is harmless.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// hlc is a hybrid logical clock packed in one int64: wall-clock nanoseconds,
// but never behind the newest timestamp seen, and strictly increasing.
type hlc struct {
	mu   sync.Mutex
	last int64
}

func (c *hlc) now() int64 {
	t := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if t <= c.last {
		t = c.last + 1
	}
	c.last = t
	return t
}

func (c *hlc) observe(ts int64) {
	c.mu.Lock()
	if ts > c.last {
		c.last = ts
	}
	c.mu.Unlock()
}
