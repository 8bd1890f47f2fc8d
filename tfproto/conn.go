package tfproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// MaxFrame is the largest framed body either side sends or accepts: the
// reference server's COMMBUFLEN (WIRE.md §1.3).
const MaxFrame = 512 * 1024

// Protocol errors. A connection that returns one of them is out of step and must
// be closed.
var (
	ErrFrameTooLarge = errors.New("tfproto: frame length over 524288")
	ErrNegativeFrame = errors.New("tfproto: negative frame length")
)

var bigBufPool = sync.Pool{New: func() any { b := make([]byte, MaxFrame+16); return &b }}

// GetBuffer returns a pooled buffer of at least MaxFrame+16 bytes. Give it back
// with PutBuffer.
func GetBuffer() *[]byte { return bigBufPool.Get().(*[]byte) }

// PutBuffer returns a buffer obtained from GetBuffer to the pool.
func PutBuffer(b *[]byte) { bigBufPool.Put(b) }

// Conn is a TFProtocol connection: framed messages and raw fields over a net.Conn,
// with one cipher state per direction (WIRE.md §1, §3.4).
//
// Reads and writes may run concurrently with each other (full-duplex transfer,
// gateway deliveries); reads are serialised by the caller, writes by an internal
// lock, so several goroutines may write.
//
// Before SetCiphers is called all bytes travel in the clear, as in the first
// handshake steps.
type Conn struct {
	nc net.Conn
	r  *bufio.Reader

	// AfterRead, if set, runs after every completed read of a frame or field
	// that had to take bytes from the socket (not when they were all buffered
	// already); the server uses it to re-arm TCP_QUICKACK.
	AfterRead func()

	rx      *Cipher // guarded by the reader (one reader at a time)
	small   []byte  // reused body buffer for small frames
	lent    *[]byte // pooled buffer lent for the last large frame
	hdr     [8]byte
	rxBytes atomic.Int64

	wmu     sync.Mutex
	tx      *Cipher
	wbuf    []byte
	txBytes atomic.Int64
}

// readBufSize is the socket read buffer of a connection. Reads of a field at
// least this long go straight from the socket into the caller's buffer, so it
// only has to hold a few small fields; small keeps idle sessions cheap.
const readBufSize = 4096

// NewConn wraps nc. Nothing is enciphered until SetCiphers.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, readBufSize)}
}

// SetSource makes reads come from r, a wrapper of the same connection (the
// server's OOB-aware reader), keeping the read buffer. Call it before the first
// read.
func (c *Conn) SetSource(r io.Reader) { c.r.Reset(r) }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Buffered returns the number of bytes already read from the socket but not yet
// consumed.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// SetCiphers switches encryption on with the given states (tx enciphers what this
// side sends, rx deciphers what it receives).
func (c *Conn) SetCiphers(tx, rx *Cipher) {
	c.wmu.Lock()
	c.tx = tx
	c.wmu.Unlock()
	c.rx = rx
}

// Encrypted reports whether SetCiphers was called.
func (c *Conn) Encrypted() bool { return c.rx != nil }

// WithTx runs f with the TX cipher state while holding the write lock, so that no
// other write interleaves (NIGMA uses it to swap keys at the right moment).
func (c *Conn) WithTx(f func(tx *Cipher)) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	f(c.tx)
}

// RxCipher returns the RX state. Only the reading goroutine may use it.
func (c *Conn) RxCipher() *Cipher { return c.rx }

// Counters returns the bytes received and sent through this Conn.
func (c *Conn) Counters() (rx, tx int64) {
	return c.rxBytes.Load(), c.txBytes.Load()
}

// Close closes the underlying connection and releases pooled buffers.
func (c *Conn) Close() error {
	c.release()
	return c.nc.Close()
}

func (c *Conn) release() {
	if c.lent != nil {
		PutBuffer(c.lent)
		c.lent = nil
	}
}

func (c *Conn) decrypt(b []byte) {
	if c.rx != nil {
		c.rx.Decrypt(b, b)
	}
}

func (c *Conn) readFull(b []byte) error {
	fromSocket := c.r.Buffered() < len(b)
	n, err := io.ReadFull(c.r, b)
	c.rxBytes.Add(int64(n))
	if err == nil && fromSocket && c.AfterRead != nil {
		c.AfterRead()
	}
	return err
}

// ReadField reads len(b) bytes as one cipher unit and deciphers them in place.
func (c *Conn) ReadField(b []byte) error {
	if err := c.readFull(b); err != nil {
		return err
	}
	c.decrypt(b)
	return nil
}

// ReadInt32 reads a raw 4-byte big-endian signed field (one cipher unit).
func (c *Conn) ReadInt32() (int32, error) {
	b := c.hdr[:4]
	if err := c.ReadField(b); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// ReadInt64 reads a raw 8-byte big-endian signed field (one cipher unit).
func (c *Conn) ReadInt64() (int64, error) {
	b := c.hdr[:8]
	if err := c.ReadField(b); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ReadFrame reads one framed message: the 4-byte length header and the body, each
// its own cipher unit. The body is at most max bytes (max ≤ 0 means MaxFrame); a
// longer or negative length is a protocol error. The returned slice is valid until
// the next read on c.
func (c *Conn) ReadFrame(max int) ([]byte, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	n, err := c.ReadInt32()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("%w (%d)", ErrNegativeFrame, n)
	}
	if int(n) > max {
		return nil, fmt.Errorf("%w (%d > %d)", ErrFrameTooLarge, n, max)
	}
	return c.ReadBody(int(n))
}

// ReadBody reads an n-byte payload as one cipher unit into a connection-owned
// buffer, valid until the next read. n must be in [0, MaxFrame].
func (c *Conn) ReadBody(n int) ([]byte, error) {
	c.release()
	var b []byte
	if n <= 4096 {
		if cap(c.small) < 4096 {
			c.small = make([]byte, 4096)
		}
		b = c.small[:n]
	} else {
		c.lent = GetBuffer()
		b = (*c.lent)[:n]
	}
	if n == 0 {
		return b, nil
	}
	if err := c.ReadField(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Writer helpers. Every write enciphers its fields into one buffer and sends it
// in a single Write call. Small writes reuse a per-connection buffer; large ones
// borrow a pooled buffer for the duration of the write.

// wbuffer returns a zero-length buffer with room for n bytes and a function that
// gives it back. The caller holds wmu.
func (c *Conn) wbuffer(n int) ([]byte, func()) {
	if n <= 64*1024 {
		if cap(c.wbuf) < n {
			c.wbuf = make([]byte, 0, max(n, 4096))
		}
		return c.wbuf[:0], func() {}
	}
	if n <= MaxFrame+16 {
		p := GetBuffer()
		return (*p)[:0], func() { PutBuffer(p) }
	}
	return make([]byte, 0, n), func() {}
}

func (c *Conn) appendField(dst, field []byte) []byte {
	start := len(dst)
	dst = append(dst, field...)
	if c.tx != nil {
		c.tx.Encrypt(dst[start:], dst[start:])
	}
	return dst
}

func (c *Conn) appendFrame(dst, body []byte) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(body)))
	dst = c.appendField(dst, h[:])
	if len(body) > 0 {
		dst = c.appendField(dst, body)
	}
	return dst
}

func (c *Conn) flush(b []byte) error {
	n, err := c.nc.Write(b)
	c.txBytes.Add(int64(n))
	return err
}

// WriteFrame sends body as a framed message: header and body enciphered as two
// calls, sent in one write.
func (c *Conn) WriteFrame(body []byte) error {
	return c.WriteFrames(body)
}

// WriteFrameString is WriteFrame for a string body.
func (c *Conn) WriteFrameString(s string) error {
	if len(s) > MaxFrame {
		return fmt.Errorf("%w (%d)", ErrFrameTooLarge, len(s))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, done := c.wbuffer(4 + len(s))
	defer done()
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	b = append(b, s...)
	if c.tx != nil {
		c.tx.Encrypt(b[:4], b[:4])
		c.tx.Encrypt(b[4:], b[4:])
	}
	return c.flush(b)
}

// WriteFrames sends several framed messages in one write.
func (c *Conn) WriteFrames(bodies ...[]byte) error {
	n := 0
	for _, body := range bodies {
		if len(body) > MaxFrame {
			return fmt.Errorf("%w (%d)", ErrFrameTooLarge, len(body))
		}
		n += 4 + len(body)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, done := c.wbuffer(n)
	defer done()
	for _, body := range bodies {
		b = c.appendFrame(b, body)
	}
	return c.flush(b)
}

// WriteFields sends each field as its own cipher unit, all in one write. Use it
// for raw headers followed by their payload (SDOWN, HPFI, NIGMA, gateway).
func (c *Conn) WriteFields(fields ...[]byte) error {
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, done := c.wbuffer(n)
	defer done()
	for _, f := range fields {
		if len(f) > 0 {
			b = c.appendField(b, f)
		}
	}
	return c.flush(b)
}

// WriteInt32 sends a raw 4-byte big-endian field.
func (c *Conn) WriteInt32(v int32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	return c.WriteFields(b[:])
}

// WriteInt64 sends a raw 8-byte big-endian field.
func (c *Conn) WriteInt64(v int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return c.WriteFields(b[:])
}

// Int32Field returns v as a 4-byte big-endian field for WriteFields.
func Int32Field(v int32) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(v))
}

// Int64Field returns v as an 8-byte big-endian field for WriteFields.
func Int64Field(v int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v))
}
