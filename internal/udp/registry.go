// Package udp holds the keepalive services of TFProtocol 2.4.1 (WIRE.md §6): the
// datagram services answered on the UDP port with the TCP port's number
// (HOSTCHECK, PROCHECK, SOCKCHECK, UDP_TLB), the registry of process keys they
// look sessions up in, and the TCP out-of-band keepalive that feeds SOCKCHECK's
// counter.
//
// Nothing here touches the filesystem: a datagram is answered from memory only.
package udp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MaxKeyLen is the longest process key (PROCKEY), as in the reference.
const MaxKeyLen = 39

// Session is the part of one TCP session that the UDP checks can see: that it
// is alive (it is registered) and how many out-of-band bytes it has received.
type Session struct {
	oob atomic.Uint32

	// mu serializes the handling of urgent bytes with in-band reads of the
	// session's socket (see Conn); echo is an answer not sent yet.
	mu      sync.Mutex
	hasEcho bool
	echo    byte
}

// CountOOB records one out-of-band byte received on the session's socket.
func (s *Session) CountOOB() { s.oob.Add(1) }

// OOB returns the number of out-of-band bytes received so far (it wraps at
// 2^32, as the spec's unsigned 32-bit counter does).
func (s *Session) OOB() uint32 { return s.oob.Load() }

// Registry maps process keys to live sessions, for one server. A key is
// registered when the session first asks for it (PROCKEY) and unregistered when
// the session ends; PROCHECK is true exactly in between.
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Session
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: make(map[string]*Session)} }

// ErrKeyFailed means no unique key could be made (FAILED 33).
var ErrKeyFailed = errors.New("udp: cannot make a unique process key")

// keySeq numbers the keys this process hands out, so no two are equal even
// when they are made in the same second.
var keySeq atomic.Uint64

// keyRandom is how many random decimal digits end a key.
const keyRandom = 12

var randLimit = new(big.Int).Exp(big.NewInt(10), big.NewInt(keyRandom), nil)

// newKey makes "/<unix-seconds><pid, 7 digits><sequence><12 random digits>".
// It starts like the reference's "/<unix-seconds><pid>" (clients treat it as an
// opaque string). The fixed-width parts around the sequence number make it
// unique within the process and, through the pid, on the node; the random tail
// makes it unguessable, so a datagram cannot probe other people's sessions by
// counting up.
func newKey(now time.Time) (string, error) {
	r, err := rand.Int(rand.Reader, randLimit)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrKeyFailed, err)
	}
	k := fmt.Sprintf("/%d%07d%d%0*d", now.Unix(), os.Getpid(), keySeq.Add(1), keyRandom, r)
	if len(k) > MaxKeyLen {
		return "", ErrKeyFailed
	}
	return k, nil
}

// Register gives s a new unique key and records it.
func (r *Registry) Register(s *Session) (string, error) {
	for range 3 {
		k, err := newKey(time.Now())
		if err != nil {
			return "", err
		}
		r.mu.Lock()
		if _, dup := r.m[k]; !dup {
			r.m[k] = s
			r.mu.Unlock()
			return k, nil
		}
		r.mu.Unlock()
	}
	return "", ErrKeyFailed
}

// Unregister forgets key (a no-op for an unknown or empty key).
func (r *Registry) Unregister(key string) {
	r.mu.Lock()
	delete(r.m, key)
	r.mu.Unlock()
}

// Lookup returns the live session registered under key.
func (r *Registry) Lookup(key string) (*Session, bool) {
	r.mu.RLock()
	s, ok := r.m[key]
	r.mu.RUnlock()
	return s, ok
}

// Len returns the number of registered keys.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}
