// Package tlb is the Transfer Load Balancer's pool: the tuples that TLB (TCP)
// and UDP_TLB answer with, "4 ip;port" or "6 ip;port". A single node reads the
// reference-format tlb file and rotates through it; a cluster plugs in a pool
// that answers with the least-loaded live node.
package tlb

import "errors"

// ErrEmpty means the pool has no tuple to give (FAILED 52).
var ErrEmpty = errors.New("tlb: pool empty")

// Pool hands out tuples.
type Pool interface {
	// NewPicker returns a picker for one TCP session, or one UDP source: the
	// reference rotates per connection, each starting at the first line.
	NewPicker() Picker
}

// Picker returns the next tuple for its session.
type Picker interface {
	// Next returns the next tuple, e.g. "4 10.0.0.1;10346", or ErrEmpty.
	Next() (string, error)
}
