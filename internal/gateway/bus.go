// Package gateway is XS_GATEWAY's relay core: the identity registry, each peer's
// bounded send queue and writer, drop accounting by reason, and the Bus that
// moves a message to whoever holds an identity. A single node uses the
// in-process bus; a cluster plugs a NATS-backed Bus in behind the same
// interface, so the protocol code never changes.
package gateway

import "errors"

// Drop reasons. Every message that is not delivered is counted under one of
// them.
var (
	// ErrUnknownIdentity: nobody holds the destination identity.
	ErrUnknownIdentity = errors.New("gateway: unknown identity")
	// ErrQueueFull: the receiver's send queue is full (a slow receiver never
	// blocks a sender).
	ErrQueueFull = errors.New("gateway: receiver queue full")
	// ErrPeerGone: the receiver left between lookup and delivery.
	ErrPeerGone = errors.New("gateway: receiver gone")
	// ErrTooLarge: the message is over the size limit.
	ErrTooLarge = errors.New("gateway: message too large")
)

// Peer is the receiving end of one gateway session.
type Peer interface {
	// Enqueue offers msg to the peer's bounded queue without blocking. It
	// returns nil when queued, or ErrQueueFull / ErrPeerGone. The peer owns
	// msg afterwards.
	Enqueue(msg []byte) error
	// Evicted tells the peer that a newer registration of its identity won:
	// it stops receiving, and is told nothing on the wire (reference
	// behaviour).
	Evicted()
}

// Bus delivers messages to identities.
type Bus interface {
	// Attach makes p the holder of identity. The newest registration wins
	// (across the cluster for a cluster bus): the previous holder is
	// Evicted. detach releases the identity if p still holds it; it is safe
	// to call more than once.
	Attach(identity string, p Peer) (detach func(), err error)
	// Send hands msg to the holder of identity, best effort, without
	// blocking on the receiver. A non-nil error is one of the drop reasons
	// above (or wraps one), for accounting; the sender is never told.
	Send(identity string, msg []byte) error
	// Close releases the bus's resources.
	Close() error
}
