package gateway

import (
	"errors"
	"sync/atomic"
)

// Drop reasons local to the relay core (the Bus ones are in bus.go).
var (
	// ErrInvalidSize: a message announced with a negative size (WIRE.md §7
	// item 6: the reference would pass it through; tfd drops it).
	ErrInvalidSize = errors.New("gateway: negative message size")
	// ErrWriteFailed: the receiver's connection failed (or timed out) while
	// the message was queued or being written.
	ErrWriteFailed = errors.New("gateway: write to receiver failed")
)

// Counters are the relay's running totals, updated atomically from every
// session and writer. One Counters serves one server; Stats takes a consistent
// enough snapshot for metrics (each field is read atomically, the set is not).
//
// Every message a sender hands to the relay ends up counted exactly once:
// as Delivered, or under one drop reason. Messages still in flight are the
// difference.
type Counters struct {
	received  atomic.Uint64
	delivered atomic.Uint64
	unknown   atomic.Uint64
	queueFull atomic.Uint64
	peerGone  atomic.Uint64
	tooLarge  atomic.Uint64
	invalid   atomic.Uint64
	writeErr  atomic.Uint64
	other     atomic.Uint64

	registered atomic.Uint64
	evicted    atomic.Uint64
	peers      atomic.Int64
}

// Stats is a snapshot of Counters.
type Stats struct {
	// Received counts messages read from senders (before routing).
	Received uint64 `json:"received"`
	// Delivered counts messages written to a receiver's connection.
	Delivered uint64 `json:"delivered"`
	// Drops by reason.
	DroppedUnknown   uint64 `json:"dropped_unknown_identity"`
	DroppedQueueFull uint64 `json:"dropped_queue_full"`
	DroppedPeerGone  uint64 `json:"dropped_peer_gone"`
	DroppedTooLarge  uint64 `json:"dropped_too_large"`
	DroppedInvalid   uint64 `json:"dropped_invalid_size"`
	DroppedWriteErr  uint64 `json:"dropped_write_error"`
	// DroppedOther counts drops whose error matched no known reason (a
	// cluster bus's transport errors, for example).
	DroppedOther uint64 `json:"dropped_other"`
	// Registered counts successful identity registrations; Evicted those
	// replaced by a newer registration of the same identity.
	Registered uint64 `json:"registered"`
	Evicted    uint64 `json:"evicted"`
	// Peers is the number of sessions currently inside the gateway.
	Peers int64 `json:"peers"`
}

// Dropped returns the total of all drop reasons.
func (s Stats) Dropped() uint64 {
	return s.DroppedUnknown + s.DroppedQueueFull + s.DroppedPeerGone + s.DroppedTooLarge + s.DroppedInvalid + s.DroppedWriteErr + s.DroppedOther
}

// Stats returns a snapshot of the counters.
func (c *Counters) Stats() Stats {
	return Stats{
		Received:         c.received.Load(),
		Delivered:        c.delivered.Load(),
		DroppedUnknown:   c.unknown.Load(),
		DroppedQueueFull: c.queueFull.Load(),
		DroppedPeerGone:  c.peerGone.Load(),
		DroppedTooLarge:  c.tooLarge.Load(),
		DroppedInvalid:   c.invalid.Load(),
		DroppedWriteErr:  c.writeErr.Load(),
		DroppedOther:     c.other.Load(),
		Registered:       c.registered.Load(),
		Evicted:          c.evicted.Load(),
		Peers:            c.peers.Load(),
	}
}

// Received records n messages read from senders.
func (c *Counters) Received(n int) { c.received.Add(uint64(n)) }

// Delivered records n messages written to receivers.
func (c *Counters) Delivered(n int) { c.delivered.Add(uint64(n)) }

// Drop records n messages dropped for reason err (one of the drop-reason
// errors, possibly wrapped). A nil err records nothing.
func (c *Counters) Drop(err error, n int) {
	if err == nil || n <= 0 {
		return
	}
	u := uint64(n)
	switch {
	case errors.Is(err, ErrUnknownIdentity):
		c.unknown.Add(u)
	case errors.Is(err, ErrQueueFull):
		c.queueFull.Add(u)
	case errors.Is(err, ErrPeerGone):
		c.peerGone.Add(u)
	case errors.Is(err, ErrTooLarge):
		c.tooLarge.Add(u)
	case errors.Is(err, ErrInvalidSize):
		c.invalid.Add(u)
	case errors.Is(err, ErrWriteFailed):
		c.writeErr.Add(u)
	default:
		c.other.Add(u)
	}
}

// Joined records a registration; Left records a peer leaving the gateway.
func (c *Counters) Joined() { c.registered.Add(1); c.peers.Add(1) }

// Left records that a registered peer left the gateway (by -1 or disconnect).
func (c *Counters) Left() { c.peers.Add(-1) }

// Evicted records that a registration was replaced by a newer one.
func (c *Counters) Evicted() { c.evicted.Add(1) }
