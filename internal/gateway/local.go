package gateway

import (
	"errors"
	"sync"

	"github.com/tfd-project/tfd/tfproto"
)

// Size limits of the gateway (WIRE.md §7 item 8).
const (
	// MaxMessage is the largest message, and the largest destination or
	// identity field, a peer may send: the communication buffer minus one.
	// A longer header is a protocol error that closes the session.
	MaxMessage = tfproto.MaxFrame - 1
	// MaxIdentity is the longest identity tfd registers. A longer one (up to
	// MaxMessage) is read and answered with FAILED 2 : Failed creating
	// identity.; a longer destination matches nobody.
	MaxIdentity = 4096
)

// ErrClosed is returned by Attach after the bus was closed.
var ErrClosed = errors.New("gateway: bus closed")

// LocalBus is the in-process Bus of a single node: a map from identity (exact
// string match, WIRE.md §P row 15) to the peer that holds it. Identities never
// touch the filesystem.
type LocalBus struct {
	mu     sync.RWMutex
	peers  map[string]*holder
	closed bool
}

// holder wraps a Peer so that detach can tell its own registration from a
// newer one by pointer, whatever the Peer's dynamic type.
type holder struct{ p Peer }

// NewLocalBus returns an empty in-process bus.
func NewLocalBus() *LocalBus { return &LocalBus{peers: make(map[string]*holder)} }

var _ Bus = (*LocalBus)(nil)

// Attach implements Bus: p becomes the holder of identity and the previous
// holder, if any, is Evicted (outside the bus lock).
func (b *LocalBus) Attach(identity string, p Peer) (func(), error) {
	h := &holder{p: p}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	old := b.peers[identity]
	b.peers[identity] = h
	b.mu.Unlock()
	if old != nil {
		old.p.Evicted()
	}
	detach := sync.OnceFunc(func() {
		b.mu.Lock()
		if b.peers[identity] == h {
			delete(b.peers, identity)
		}
		b.mu.Unlock()
	})
	return detach, nil
}

// Send implements Bus: it offers msg to the holder's queue and never blocks.
// The holder owns msg when Send returns nil.
func (b *LocalBus) Send(identity string, msg []byte) error {
	if len(msg) > MaxMessage {
		return ErrTooLarge
	}
	b.mu.RLock()
	h := b.peers[identity]
	b.mu.RUnlock()
	if h == nil {
		return ErrUnknownIdentity
	}
	return h.p.Enqueue(msg)
}

// Len returns the number of registered identities.
func (b *LocalBus) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.peers)
}

// Close implements Bus: it forgets every identity; later Attach calls fail
// and later Sends find nobody. Peers are not touched: their sessions end on
// their own.
func (b *LocalBus) Close() error {
	b.mu.Lock()
	b.closed = true
	clear(b.peers)
	b.mu.Unlock()
	return nil
}
