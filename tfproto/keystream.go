package tfproto

import (
	"encoding/binary"
	"sync"
)

// The cipher's state evolution depends only on the key and the seed, never on the
// data (WIRE.md §3.2): for every byte position of a call it combines the data with
// two bytes, the key byte x at the call's key index and the seed's high byte a:
//
//	encipher: out = (in XOR x) + a        decipher: out = (in − a) XOR x
//
// Keystream computes those bytes ahead of the data, and ApplyEncrypt/ApplyDecrypt
// combine them with data eight bytes at a time. The split lets a producer
// goroutine run the serial seed recurrence (the physical limit of every transfer)
// on one core while the data is combined and moved on another.

// Keystream advances c exactly as one Encrypt or Decrypt call of len(x) bytes
// would, and stores for every position the key byte in x and the seed's high
// byte in a. len(a) must equal len(x). Enciphering src as one call is then
// ApplyEncrypt(dst, src, x, a).
func (c *Cipher) Keystream(x, a []byte) {
	c.keystreamAt(x, a, 0)
}

// keystreamAt is Keystream for positions that start at key index k of a call
// (k = offset in the call modulo the key length).
func (c *Cipher) keystreamAt(x, a []byte, k int) {
	a = a[:len(x)]
	key, s, L := c.key, c.seed, len(c.key)
	for i := range x {
		a[i] = byte(s >> 56)
		x[i] = key[k]
		s = s*((s>>8)&0xFFFFFFFF) + ((s >> 40) & 0xFFFF)
		if s == 0 {
			s = binary.LittleEndian.Uint64(key)
		}
		key[k] = byte(s)
		if k++; k == L {
			k = 0
		}
	}
	c.seed = s
}

// cryptAt enciphers (enc) or deciphers src into dst as the positions of a call
// that start at key index k, and returns the key index after them. It lets a
// call be processed in pieces.
func (c *Cipher) cryptAt(dst, src []byte, k int, enc bool) int {
	if enc {
		return c.encryptAt(dst, src, k)
	}
	return c.decryptAt(dst, src, k)
}

func (c *Cipher) encryptAt(dst, src []byte, k int) int {
	dst = dst[:len(src)]
	key, s, L := c.key, c.seed, len(c.key)
	for i, b := range src {
		hi := byte(s >> 56)
		dst[i] = (b ^ key[k]) + hi
		s = s*((s>>8)&0xFFFFFFFF) + ((s >> 40) & 0xFFFF)
		if s == 0 {
			s = binary.LittleEndian.Uint64(key)
		}
		key[k] = byte(s)
		if k++; k == L {
			k = 0
		}
	}
	c.seed = s
	return k
}

func (c *Cipher) decryptAt(dst, src []byte, k int) int {
	dst = dst[:len(src)]
	key, s, L := c.key, c.seed, len(c.key)
	for i, b := range src {
		hi := byte(s >> 56)
		dst[i] = (b - hi) ^ key[k]
		s = s*((s>>8)&0xFFFFFFFF) + ((s >> 40) & 0xFFFF)
		if s == 0 {
			s = binary.LittleEndian.Uint64(key)
		}
		key[k] = byte(s)
		if k++; k == L {
			k = 0
		}
	}
	c.seed = s
	return k
}

const highBits = 0x8080808080808080

// addBytes adds the eight bytes of p and q lane by lane, mod 256 each.
func addBytes(p, q uint64) uint64 {
	return ((p &^ highBits) + (q &^ highBits)) ^ ((p ^ q) & highBits)
}

// subBytes subtracts the eight bytes of q from those of p lane by lane, mod 256.
func subBytes(p, q uint64) uint64 {
	return ((p | highBits) - (q &^ highBits)) ^ ((p ^ ^q) & highBits)
}

// ApplyEncrypt enciphers src into dst with keystream bytes x and a produced by
// Keystream: dst[i] = (src[i] XOR x[i]) + a[i]. dst may be src; dst, x and a
// must be at least len(src) long.
func ApplyEncrypt(dst, src, x, a []byte) {
	n := len(src)
	dst, x, a = dst[:n], x[:n], a[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		v := binary.LittleEndian.Uint64(src[i:]) ^ binary.LittleEndian.Uint64(x[i:])
		binary.LittleEndian.PutUint64(dst[i:], addBytes(v, binary.LittleEndian.Uint64(a[i:])))
	}
	for ; i < n; i++ {
		dst[i] = (src[i] ^ x[i]) + a[i]
	}
}

// ApplyDecrypt deciphers src into dst with keystream bytes x and a produced by
// Keystream: dst[i] = (src[i] − a[i]) XOR x[i]. dst may be src; dst, x and a
// must be at least len(src) long.
func ApplyDecrypt(dst, src, x, a []byte) {
	n := len(src)
	dst, x, a = dst[:n], x[:n], a[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		v := subBytes(binary.LittleEndian.Uint64(src[i:]), binary.LittleEndian.Uint64(a[i:]))
		binary.LittleEndian.PutUint64(dst[i:], v^binary.LittleEndian.Uint64(x[i:]))
	}
	for ; i < n; i++ {
		dst[i] = (src[i] - a[i]) ^ x[i]
	}
}

// KeySegment is how many positions one keystream segment holds; KeyAhead is
// how many segments a KeyPipe's producer may run ahead of the consumer.
const (
	KeySegment = 256 * 1024
	KeyAhead   = 4
)

// segment is a run of keystream for positions [off, off+n) of call number call,
// with the cipher state at its start (to rewind when a prediction fails).
type segment struct {
	call    uint64
	callLen int
	off, n  int
	x, a    []byte
	seed    uint64
	key     []byte
}

var segPool = sync.Pool{New: func() any {
	return &segment{x: make([]byte, KeySegment), a: make([]byte, KeySegment)}
}}

// maxMisses is how many wrong call-length predictions a KeyPipe accepts before
// it stops producing ahead for the rest of its life.
const maxMisses = 8

// KeyPipe enciphers or deciphers a sequence of cipher calls (one per protocol
// field) with keystream that a producer goroutine computes ahead of use.
//
// The producer has to know the length of each call because the key index
// restarts at every call; it predicts them from a repeating pattern (for a
// transfer: an 8-byte chunk header, then a chunk). When a call turns out to have
// another length, the pipe rewinds to the state at the start of that call,
// processes it synchronously, learns the new length for that slot of the
// pattern and restarts the producer at the next call. Output is byte-identical
// to Cipher.Encrypt/Decrypt with one call per Begin.
//
// The pipe owns the Cipher from NewKeyPipe until Close; nothing else may use it
// in between. A KeyPipe is used by one goroutine.
type KeyPipe struct {
	c       *Cipher
	ahead   bool
	pattern []int
	slot    int
	call    uint64
	misses  int

	// The call in progress.
	n, pos int
	sync   bool // computed on c directly
	k      int  // key index in sync mode
	seg    *segment
	segPos int

	// The producer, while running.
	running bool
	full    chan *segment
	free    chan *segment
	quit    chan struct{}
	done    chan struct{}
	final   segment // the producer's state when it stopped (seed, key)
	nseg    int     // segments handed to the producer
}

// NewKeyPipe returns a pipe over c that predicts call lengths from pattern
// (repeated; every entry > 0). With ahead false it never starts a producer and
// computes every call synchronously (the reference path for benchmarks).
func NewKeyPipe(c *Cipher, ahead bool, pattern ...int) *KeyPipe {
	p := &KeyPipe{c: c, ahead: ahead && len(pattern) > 0, pattern: append([]int(nil), pattern...)}
	for _, n := range p.pattern {
		if n <= 0 {
			p.ahead = false
		}
	}
	return p
}

// Begin starts the next call, of n bytes. The previous call must be complete.
func (p *KeyPipe) Begin(n int) {
	if p.pos != p.n {
		panic("tfproto: KeyPipe.Begin before the previous call was complete")
	}
	p.releaseSeg()
	p.n, p.pos, p.k = n, 0, 0
	if n == 0 {
		// A zero-length call leaves the state untouched and is not a field
		// the pattern counts.
		p.sync = true
		return
	}
	slot := p.slot
	p.slot = (p.slot + 1) % max(len(p.pattern), 1)
	p.call++
	if !p.ahead || p.misses >= maxMisses {
		p.sync = true
		return
	}
	if !p.running {
		p.start(slot, p.call)
	}
	seg := <-p.full
	if seg.callLen == n {
		p.sync, p.seg, p.segPos = false, seg, 0
		return
	}
	// Wrong prediction: rewind to the start of this call and learn.
	p.misses++
	p.stop(1)
	p.c.seed = seg.seed
	copy(p.c.key, seg.key)
	segPool.Put(seg)
	p.pattern[slot] = n
	p.sync = true
}

// Encrypt enciphers the next len(src) bytes of the current call into dst.
func (p *KeyPipe) Encrypt(dst, src []byte) { p.apply(dst, src, true) }

// Decrypt deciphers the next len(src) bytes of the current call into dst.
func (p *KeyPipe) Decrypt(dst, src []byte) { p.apply(dst, src, false) }

func (p *KeyPipe) apply(dst, src []byte, enc bool) {
	if p.pos+len(src) > p.n {
		panic("tfproto: KeyPipe data longer than the call")
	}
	p.pos += len(src)
	if p.sync {
		p.k = p.c.cryptAt(dst, src, p.k, enc)
		return
	}
	for len(src) > 0 {
		if p.segPos == p.seg.n {
			p.free <- p.seg
			p.seg = <-p.full
			p.segPos = 0
		}
		m := min(len(src), p.seg.n-p.segPos)
		x, a := p.seg.x[p.segPos:p.segPos+m], p.seg.a[p.segPos:p.segPos+m]
		if enc {
			ApplyEncrypt(dst, src[:m], x, a)
		} else {
			ApplyDecrypt(dst, src[:m], x, a)
		}
		p.segPos += m
		src, dst = src[m:], dst[m:]
	}
}

func (p *KeyPipe) releaseSeg() {
	if p.seg != nil {
		p.free <- p.seg
		p.seg = nil
	}
}

// Close stops the producer and leaves the Cipher in the state after the last
// call, which must be complete. The pipe must not be used afterwards.
func (p *KeyPipe) Close() {
	if p.pos != p.n {
		panic("tfproto: KeyPipe.Close inside a call")
	}
	p.releaseSeg()
	if !p.running {
		return
	}
	p.stop(0)
}

// start runs a producer from the current state of c for calls from slot on.
func (p *KeyPipe) start(slot int, call uint64) {
	p.full = make(chan *segment, KeyAhead)
	p.free = make(chan *segment, KeyAhead)
	p.quit = make(chan struct{})
	p.done = make(chan struct{})
	for range KeyAhead {
		p.free <- segPool.Get().(*segment)
	}
	p.nseg = KeyAhead
	p.running = true
	pc := p.c.Clone()
	pattern := append([]int(nil), p.pattern...)
	go p.produce(pc, pattern, slot, call, p.full, p.free, p.quit, p.done)
}

// stop ends the producer, returns every segment but the held ones (taken out
// of the channels by the caller) to the pool, and sets c to the state after
// the last consumed call: the snapshot of the first unconsumed segment, or,
// when there is none, the producer's own state when it stopped. (The caller
// overrides it when it knows better.)
func (p *KeyPipe) stop(held int) {
	close(p.quit)
	<-p.done
	p.c.seed = p.final.seed
	copy(p.c.key, p.final.key)
	first := true
	for range p.nseg - held {
		select {
		case s := <-p.full:
			if first {
				p.c.seed = s.seed
				copy(p.c.key, s.key)
				first = false
			}
			segPool.Put(s)
		case s := <-p.free:
			segPool.Put(s)
		}
	}
	p.running = false
}

func (p *KeyPipe) produce(pc *Cipher, pattern []int, slot int, call uint64, full, free chan *segment, quit, done chan struct{}) {
	defer close(done)
	snapshot := func(dst *segment) {
		dst.seed = pc.seed
		dst.key = append(dst.key[:0], pc.key...)
	}
	L := len(pc.key)
	for {
		n := pattern[slot]
		slot = (slot + 1) % len(pattern)
		for off := 0; off < n; {
			var s *segment
			select {
			case s = <-free:
			case <-quit:
				snapshot(&p.final)
				return
			}
			m := min(KeySegment, n-off)
			s.call, s.callLen, s.off, s.n = call, n, off, m
			snapshot(s)
			pc.keystreamAt(s.x[:m], s.a[:m], off%L)
			select {
			case full <- s:
			case <-quit:
				p.final.seed = s.seed
				p.final.key = append(p.final.key[:0], s.key...)
				free <- s
				return
			}
			off += m
		}
		call++
	}
}

// Abort stops the producer wherever the pipe is, even inside a call, and
// leaves the Cipher in an undefined state: for a connection that is being
// closed. The pipe must not be used afterwards.
func (p *KeyPipe) Abort() {
	p.releaseSeg()
	if p.running {
		p.stop(0)
	}
	p.n, p.pos = 0, 0
}
