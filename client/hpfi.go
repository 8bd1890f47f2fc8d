package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// High-Performance File Interface: PUT, GET, PUTCAN, GETCAN (WIRE.md
// §5.25–5.28). The data direction runs through a tfproto.KeyPipe: the fused
// cipher on the calling goroutine by default, or keystream produced ahead on a
// goroutine (WithKeystreamAhead). Uploads write to the socket from a helper
// goroutine, so enciphering the next chunk overlaps with sending the last.

// DefaultHPFBuffer is the buffer size transfers ask for unless told otherwise.
const DefaultHPFBuffer = 8 << 20

// hpfChunk is the largest chunk this client sends (the server may negotiate a
// smaller buffer; a chunk never exceeds it).
const hpfChunk = tfproto.MaxFrame

// hpfGrace bounds the cancel handshake after ctx ends: a server that does not
// complete it in time leaves the session broken.
const hpfGrace = 10 * time.Second

// ErrServerCancelled is returned when the server cancelled a transfer (HPFCANCEL:
// a write error for PUT, a read error for GET).
var ErrServerCancelled = errors.New("client: the server cancelled the transfer")

// ErrZeroBuffer is returned by PutFile when the server negotiated a buffer of 0
// bytes and there was data to send.
var ErrZeroBuffer = errors.New("client: the server negotiated a zero-byte buffer")

// HPFOption tunes a PUT/GET/PUTCAN/GETCAN transfer.
type HPFOption func(*hpfConfig)

type hpfConfig struct {
	bufsz int64
	stop  bool
	ahead bool
}

// WithBufferSize asks the server for an n-byte buffer (the server may answer
// less, never more). Default DefaultHPFBuffer.
func WithBufferSize(n int64) HPFOption { return func(c *hpfConfig) { c.bufsz = n } }

// WithStop ends an upload that reached the end of its reader with HPFSTOP
// ("will continue later") instead of HPFEND. The server keeps the data either
// way; a later PutFile at the next offset resumes it.
func WithStop() HPFOption { return func(c *hpfConfig) { c.stop = true } }

// WithKeystreamAhead computes the keystream on a producer goroutine ahead of
// the data instead of with the fused cipher on the calling goroutine. It
// needs a spare core to pay off (see README, Performance).
func WithKeystreamAhead() HPFOption { return func(c *hpfConfig) { c.ahead = true } }

func hpfOptions(opts []HPFOption) hpfConfig {
	c := hpfConfig{bufsz: DefaultHPFBuffer}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// hpfRequest builds "NAME path SP struct".
func hpfRequest(name, remote string, offset uint64, bufsz int64, canpt *uint64) []byte {
	b := make([]byte, 0, len(name)+len(remote)+2+24)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, remote...)
	b = append(b, ' ')
	b = binary.BigEndian.AppendUint64(b, offset)
	b = binary.BigEndian.AppendUint64(b, uint64(bufsz))
	if canpt != nil {
		b = binary.BigEndian.AppendUint64(b, *canpt)
	}
	return b
}

// hpfExchange runs one transfer alone on the session. Unlike Exchange, the
// end of ctx does not break the session: the flow notices it and runs the
// protocol's cancel handshake, which must finish within hpfGrace. The flow
// returns inStep false when the stream is out of step (the session is then
// marked broken).
func (c *Client) hpfExchange(ctx context.Context, f func() (inStep bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := afterFuncWait(ctx, func() { c.nc.SetDeadline(time.Now().Add(hpfGrace)) })
	inStep, err := f()
	stop()
	c.nc.SetDeadline(time.Time{})
	if !inStep {
		if err == nil {
			err = errors.New("client: transfer out of step")
		}
		c.broken = err
	}
	return err
}

// hpfOpen sends the request and reads "OK " + i64(bufsz) or a FAILED line.
func (c *Client) hpfOpen(name, remote string, offset int64, bufsz int64, canpt *uint64) (int64, bool, error) {
	if offset < 0 {
		return 0, true, fmt.Errorf("client: %s: negative offset %d", name, offset)
	}
	if err := c.conn.WriteFrame(hpfRequest(name, remote, uint64(offset), bufsz, canpt)); err != nil {
		return 0, false, err
	}
	body, err := c.conn.ReadFrame(tfproto.MaxFrame)
	if err != nil {
		return 0, false, err
	}
	if len(body) == 11 && string(body[:3]) == "OK " {
		n := int64(binary.BigEndian.Uint64(body[3:]))
		if n < 0 || n > bufsz {
			return 0, false, fmt.Errorf("client: %s: server answered buffer %d for %d asked", name, n, bufsz)
		}
		return n, true, nil
	}
	st := tfproto.ParseStatus(append([]byte(nil), body...))
	if err := st.Err(); err != nil {
		return 0, true, err
	}
	return 0, false, fmt.Errorf("client: unexpected reply %q to %s", truncate(string(body), 60), name)
}

// PutFile uploads r to remote, writing at offset (in place; the server does
// not truncate), with PUT. It returns the bytes sent. When ctx ends it cancels
// the transfer (the server deletes the file), completes the FIN handshake and
// returns ctx's error with the session still usable.
func (c *Client) PutFile(ctx context.Context, remote string, r io.Reader, offset int64, opts ...HPFOption) (int64, error) {
	return c.put(ctx, "PUT", remote, r, offset, nil, hpfOptions(opts))
}

// PutFileCan is PutFile with PUTCAN: every canpt chunks the server says
// whether to go on (0 = never). A cancel through ctx takes effect at the next
// chunk boundary; there is no FIN handshake.
func (c *Client) PutFileCan(ctx context.Context, remote string, r io.Reader, offset int64, canpt uint64, opts ...HPFOption) (int64, error) {
	return c.put(ctx, "PUTCAN", remote, r, offset, &canpt, hpfOptions(opts))
}

// GetFile downloads remote from offset into w with GET and returns the bytes
// written. When ctx ends it sends HPFCANCEL, drains the flow until the FIN
// handshake is done and returns ctx's error with the session still usable.
func (c *Client) GetFile(ctx context.Context, remote string, w io.Writer, offset int64, opts ...HPFOption) (int64, error) {
	var n int64
	cfg := hpfOptions(opts)
	err := c.hpfExchange(ctx, func() (bool, error) {
		bufsz, inStep, err := c.hpfOpen("GET", remote, offset, cfg.bufsz, nil)
		if err != nil {
			return inStep, err
		}
		var nn int64
		nn, inStep, err = c.getFlow(ctx, w, bufsz, cfg)
		n = nn
		return inStep, err
	})
	return n, err
}

// GetFileCan is GetFile with GETCAN: after every canpt chunks this client
// tells the server to go on or to stop (0 = no windows; a cancel through ctx
// then breaks the session).
func (c *Client) GetFileCan(ctx context.Context, remote string, w io.Writer, offset int64, canpt uint64, opts ...HPFOption) (int64, error) {
	var n int64
	cfg := hpfOptions(opts)
	err := c.hpfExchange(ctx, func() (bool, error) {
		bufsz, inStep, err := c.hpfOpen("GETCAN", remote, offset, cfg.bufsz, &canpt)
		if err != nil {
			return inStep, err
		}
		var nn int64
		nn, inStep, err = c.getCanFlow(ctx, w, bufsz, canpt, cfg)
		n = nn
		return inStep, err
	})
	return n, err
}

func (c *Client) put(ctx context.Context, name, remote string, r io.Reader, offset int64, canpt *uint64, cfg hpfConfig) (int64, error) {
	var n int64
	err := c.hpfExchange(ctx, func() (bool, error) {
		bufsz, inStep, err := c.hpfOpen(name, remote, offset, cfg.bufsz, canpt)
		if err != nil {
			return inStep, err
		}
		var nn int64
		if canpt == nil {
			nn, inStep, err = c.putFlow(ctx, r, bufsz, cfg)
		} else {
			nn, inStep, err = c.putCanFlow(ctx, r, bufsz, *canpt, cfg)
		}
		n = nn
		return inStep, err
	})
	return n, err
}

// putCodes reads the server's codes during a PUT: HPFCANCEL (a write error)
// and HPFFIN.
type putCodes struct {
	cancel chan struct{} // closed at the server's HPFCANCEL
	fin    chan struct{} // closed at HPFFIN or a read error
	err    error
}

func (c *Client) readPutCodes() *putCodes {
	pc := &putCodes{cancel: make(chan struct{}), fin: make(chan struct{})}
	go func() {
		defer close(pc.fin)
		for {
			code, err := c.conn.ReadInt64()
			if err != nil {
				pc.err = err
				return
			}
			switch code {
			case tfproto.HPFCancel:
				select {
				case <-pc.cancel:
				default:
					close(pc.cancel)
				}
			case tfproto.HPFFin:
				return
			default:
				pc.err = fmt.Errorf("client: server sent code %d during PUT", code)
				return
			}
		}
	}()
	return pc
}

// chunkReader reads full chunks from r into pooled buffers with 8 bytes of
// room in front for the chunk header.
type chunkReader struct {
	r    io.Reader
	size int
	eof  bool
}

// next returns the next chunk in a pooled buffer: header room plus n data
// bytes; n is 0 at EOF (and the buffer nil).
func (cr *chunkReader) next() (*[]byte, int, error) {
	if cr.eof {
		return nil, 0, nil
	}
	p := tfproto.GetBuffer()
	n, err := io.ReadFull(cr.r, (*p)[8:8+cr.size])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		cr.eof = true
	case err != nil:
		tfproto.PutBuffer(p)
		return nil, 0, err
	}
	if n == 0 {
		tfproto.PutBuffer(p)
		return nil, 0, nil
	}
	return p, n, nil
}

// sendChunk enciphers header and data through the pipe and queues them on
// the socket writer, which takes the buffer.
func sendChunk(pipe *tfproto.KeyPipe, sw *tfproto.RawWriter, p *[]byte, n int) error {
	b := (*p)[:8+n]
	binary.BigEndian.PutUint64(b[:8], uint64(n))
	pipe.Begin(8)
	pipe.Encrypt(b[:8], b[:8])
	pipe.Begin(n)
	pipe.Encrypt(b[8:], b[8:])
	return sw.Send(p, len(b))
}

// upload is the sending side of PUT/PUTCAN: chunks read from r, enciphered
// through pipe and queued on sw; term is the code that ends the flow and
// result the error PutFile returns once it ended.
type upload struct {
	cr     *chunkReader
	pipe   *tfproto.KeyPipe
	sw     *tfproto.RawWriter
	bufsz  int64
	term   int64
	result error
}

func (c *Client) newUpload(r io.Reader, bufsz int64, cfg hpfConfig) *upload {
	chunk := max(int(min(bufsz, hpfChunk)), 1)
	u := &upload{
		cr:    &chunkReader{r: r, size: chunk},
		pipe:  tfproto.NewKeyPipe(c.conn.TxCipher(), cfg.ahead, 8, chunk),
		sw:    c.conn.NewRawWriter(2),
		bufsz: bufsz,
		term:  tfproto.HPFEnd,
	}
	if cfg.stop {
		u.term = tfproto.HPFStop
	}
	return u
}

// next reads and sends one chunk of n bytes. done reports the end of the
// data (term and result say how it ends); err is a broken connection (the
// pipe is aborted).
func (u *upload) next() (n int, done bool, err error) {
	p, n, rerr := u.cr.next()
	if rerr != nil {
		// A local read error: cancel (the server deletes the file).
		u.term, u.result = tfproto.HPFCancel, fmt.Errorf("client: read upload: %w", rerr)
		return 0, true, nil
	}
	if n == 0 {
		return 0, true, nil
	}
	if u.bufsz == 0 {
		tfproto.PutBuffer(p)
		u.term, u.result = tfproto.HPFStop, ErrZeroBuffer
		return 0, true, nil
	}
	if err := sendChunk(u.pipe, u.sw, p, n); err != nil {
		u.pipe.Abort()
		return 0, false, err
	}
	return n, false, nil
}

func (c *Client) putFlow(ctx context.Context, r io.Reader, bufsz int64, cfg hpfConfig) (sent int64, inStep bool, err error) {
	codes := c.readPutCodes()
	defer func() {
		if !inStep {
			// Unblock and collect the code reader.
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
		<-codes.fin
	}()
	u := c.newUpload(r, bufsz, cfg)
	defer u.sw.Close()
	serverCancel := false
loop:
	for {
		select {
		case <-codes.cancel:
			serverCancel, u.result = true, ErrServerCancelled
			break loop
		default:
		}
		select {
		case <-ctx.Done():
			u.term, u.result = tfproto.HPFCancel, ctx.Err()
			break loop
		case <-codes.fin:
			select {
			case <-codes.cancel:
				serverCancel, u.result = true, ErrServerCancelled
				break loop
			default:
			}
			// The code reader stopped without a server cancel: a broken
			// connection or a protocol error.
			u.pipe.Close()
			if codes.err != nil {
				return sent, false, codes.err
			}
			return sent, false, errors.New("client: server ended PUT early")
		default:
		}
		n, done, err := u.next()
		if err != nil {
			return sent, false, err
		}
		if done {
			break
		}
		sent += int64(n)
	}
	u.pipe.Close()
	if err := u.sw.Flush(); err != nil {
		return sent, false, err
	}
	if !serverCancel {
		if err := c.conn.WriteInt64(u.term); err != nil {
			return sent, false, err
		}
	}
	<-codes.fin
	if codes.err != nil {
		return sent, false, codes.err
	}
	select {
	case <-codes.cancel:
		// The server cancelled (a write error), possibly after our END.
		if u.result == nil {
			u.result = ErrServerCancelled
		}
	default:
	}
	if err := c.conn.WriteInt64(tfproto.HPFFin); err != nil {
		return sent, false, err
	}
	return sent, true, u.result
}

func (c *Client) putCanFlow(ctx context.Context, r io.Reader, bufsz int64, canpt uint64, cfg hpfConfig) (sent int64, inStep bool, err error) {
	u := c.newUpload(r, bufsz, cfg)
	defer u.sw.Close()
	var chunks uint64
	for {
		if ctx.Err() != nil {
			u.term, u.result = tfproto.HPFCancel, ctx.Err()
			break
		}
		n, done, err := u.next()
		if err != nil {
			return sent, false, err
		}
		if done {
			break
		}
		sent += int64(n)
		chunks++
		if canpt > 0 && chunks%canpt == 0 {
			code, err := c.conn.ReadInt64()
			if err != nil {
				u.pipe.Abort()
				return sent, false, err
			}
			switch code {
			case tfproto.HPFCont:
			case tfproto.HPFCancel:
				// The server is back in command mode.
				u.pipe.Close()
				return sent, true, ErrServerCancelled
			default:
				u.pipe.Abort()
				return sent, false, fmt.Errorf("client: server sent code %d at a PUTCAN window", code)
			}
		}
	}
	u.pipe.Close()
	if err := u.sw.Flush(); err != nil {
		return sent, false, err
	}
	if err := c.conn.WriteInt64(u.term); err != nil {
		return sent, false, err
	}
	return sent, true, u.result
}

// getChunk reads an n-byte chunk through the pipe and writes it to w unless
// discard is set; a write error is returned as werr (the flow goes on).
func (c *Client) getChunk(pipe *tfproto.KeyPipe, buf []byte, n int64, w io.Writer, discard bool) (written int64, werr, err error) {
	pipe.Begin(int(n))
	for n > 0 {
		m := int(min(n, int64(len(buf))))
		b := buf[:m]
		if err := c.conn.ReadRaw(b); err != nil {
			return written, nil, err
		}
		pipe.Decrypt(b, b)
		n -= int64(m)
		if discard || werr != nil {
			continue
		}
		k, e := w.Write(b)
		written += int64(k)
		if e == nil && k < m {
			e = io.ErrShortWrite
		}
		werr = e
	}
	return written, werr, nil
}

func (c *Client) readCode(pipe *tfproto.KeyPipe, hdr []byte) (int64, error) {
	pipe.Begin(8)
	if err := c.conn.ReadRaw(hdr); err != nil {
		return 0, err
	}
	pipe.Decrypt(hdr, hdr)
	return int64(binary.BigEndian.Uint64(hdr)), nil
}

func (c *Client) getFlow(ctx context.Context, w io.Writer, bufsz int64, cfg hpfConfig) (got int64, inStep bool, err error) {
	// finMu orders our codes: the cancel (HPFCANCEL+HPFFIN, from ctx) and the
	// FIN that answers the server's END or CANCEL are sent once, in one write.
	var finMu sync.Mutex
	finSent := false
	var result error
	cancelFlow := func(why error) {
		finMu.Lock()
		defer finMu.Unlock()
		if finSent {
			return
		}
		finSent = true
		if result == nil {
			result = why
		}
		c.conn.WriteFields(tfproto.Int64Field(tfproto.HPFCancel), tfproto.Int64Field(tfproto.HPFFin))
	}
	stop := context.AfterFunc(ctx, func() { cancelFlow(ctx.Err()) })
	defer stop()

	buf := tfproto.GetBuffer()
	defer tfproto.PutBuffer(buf)
	pipe := tfproto.NewKeyPipe(c.conn.RxCipher(), cfg.ahead, 8, int(max(min(bufsz, hpfChunk), 1)))
	var hdr [8]byte
	for {
		h, err := c.readCode(pipe, hdr[:])
		if err != nil {
			pipe.Abort()
			return got, false, err
		}
		switch {
		case h > 0:
			if h > bufsz {
				pipe.Abort()
				return got, false, fmt.Errorf("client: GET chunk of %d bytes over the negotiated %d", h, bufsz)
			}
			finMu.Lock()
			discard := finSent
			finMu.Unlock()
			n, werr, err := c.getChunk(pipe, *buf, h, w, discard)
			got += n
			if err != nil {
				pipe.Abort()
				return got, false, err
			}
			if werr != nil {
				cancelFlow(fmt.Errorf("client: write download: %w", werr))
			}
		case h == tfproto.HPFEnd, h == tfproto.HPFCancel:
			finMu.Lock()
			if !finSent {
				finSent = true
				if h == tfproto.HPFCancel {
					result = ErrServerCancelled
				}
				if err := c.conn.WriteInt64(tfproto.HPFFin); err != nil {
					finMu.Unlock()
					pipe.Abort()
					return got, false, err
				}
			}
			finMu.Unlock()
		case h == tfproto.HPFFin:
			finMu.Lock()
			ok := finSent
			finMu.Unlock()
			if !ok {
				pipe.Abort()
				return got, false, errors.New("client: server sent HPFFIN before the client")
			}
			pipe.Close()
			stop()
			finMu.Lock()
			defer finMu.Unlock()
			return got, true, result
		default:
			pipe.Abort()
			return got, false, fmt.Errorf("client: server sent code %d during GET", h)
		}
	}
}

func (c *Client) getCanFlow(ctx context.Context, w io.Writer, bufsz int64, canpt uint64, cfg hpfConfig) (got int64, inStep bool, err error) {
	buf := tfproto.GetBuffer()
	defer tfproto.PutBuffer(buf)
	pipe := tfproto.NewKeyPipe(c.conn.RxCipher(), cfg.ahead, 8, int(max(min(bufsz, hpfChunk), 1)))
	var hdr [8]byte
	var chunks uint64
	var werr error
	for {
		h, err := c.readCode(pipe, hdr[:])
		if err != nil {
			pipe.Abort()
			return got, false, err
		}
		switch {
		case h > 0:
			if h > bufsz {
				pipe.Abort()
				return got, false, fmt.Errorf("client: GETCAN chunk of %d bytes over the negotiated %d", h, bufsz)
			}
			n, e, err := c.getChunk(pipe, *buf, h, w, werr != nil)
			got += n
			if err != nil {
				pipe.Abort()
				return got, false, err
			}
			if e != nil && werr == nil {
				werr = fmt.Errorf("client: write download: %w", e)
			}
			chunks++
			if canpt == 0 {
				if ctx.Err() != nil {
					pipe.Abort()
					return got, false, ctx.Err()
				}
				continue
			}
			if chunks%canpt == 0 {
				stopErr := werr
				if stopErr == nil {
					stopErr = ctx.Err()
				}
				code := tfproto.HPFCont
				if stopErr != nil {
					code = tfproto.HPFCancel
				}
				if err := c.conn.WriteInt64(code); err != nil {
					pipe.Abort()
					return got, false, err
				}
				if stopErr != nil {
					pipe.Close()
					return got, true, stopErr
				}
			}
		case h == tfproto.HPFEnd:
			pipe.Close()
			return got, true, werr
		case h == tfproto.HPFCancel:
			pipe.Close()
			return got, true, ErrServerCancelled
		default:
			pipe.Abort()
			return got, false, fmt.Errorf("client: server sent code %d during GETCAN", h)
		}
	}
}
