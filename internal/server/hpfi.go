package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// The High-Performance File Interface: PUT, GET, PUTCAN, GETCAN (WIRE.md
// §5.25–5.28, §P rows 9–10).
//
// Data path. Every chunk header, chunk and code is its own cipher call. The
// direction that carries the data runs through a tfproto.KeyPipe (fused
// cipher on the session goroutine by default; keystream produced ahead on a
// goroutine when hpfAhead is set). Helper goroutines move the data to or from
// the already-open file with pwrite/pread and, for GET, write the enciphered
// pieces to the socket, so cipher work, socket I/O and disk I/O overlap.
// Chunks are processed in pieces of at most hpfPiece bytes from the shared
// frame-buffer pool, so a transfer holds a few MiB whatever buffer size was
// negotiated.
//
// Decisions where the spec and WIRE.md are silent:
//   - Parameters are checked before anything touches the file system: a body
//     too short for the struct answers FAILED 16, a negative bufsz FAILED 36
//     (before the open, so a refused PUT never creates a file), an offset
//     above 2^63-1 FAILED 35.
//   - Only regular files are transferred: FIFOs, devices, sockets and
//     directories answer FAILED 34 (the open uses O_NONBLOCK, so a FIFO can
//     never block the session).
//   - GET/GETCAN send chunks of min(bufsz, 512 KiB); a chunk never exceeds the
//     negotiated buffer, which is all the protocol promises.
//   - A PUT/PUTCAN chunk longer than the negotiated buffer, or a code the
//     command does not know at that point, is a protocol error: the session
//     is closed (the data written so far stays, as after a disconnect).
//   - Any server-side cancel (a write error) deletes the file (§P row 10),
//     for PUTCAN too, also when canpt is 0 and the client is never told.
//   - A client that disconnects mid-PUT leaves the data written so far in
//     place, like HPFSTOP (a later PUT at the offset resumes).
//   - In GET the client may send HPFCANCEL and HPFFIN at any time; an HPFFIN
//     without a cancel also stops the flow. Any other code is a protocol error.
func init() {
	registerFamily(family{name: "hpfi", commands: []command{
		{name: "PUT", run: cmdPut},
		{name: "GET", run: cmdGet},
		{name: "PUTCAN", run: cmdPutCan},
		{name: "GETCAN", run: cmdGetCan},
	}})
}

// hpfPiece is the largest piece of a chunk moved at once (and the largest GET
// chunk); it fits a pooled frame buffer together with an 8-byte header.
const hpfPiece = tfproto.MaxFrame

// defaultHPFIMaxBuffer caps the negotiated buffer when the configuration does
// not set a positive cap.
const defaultHPFIMaxBuffer = 8 << 20

// hpfile is the binary struct at the end of a PUT/GET/PUTCAN/GETCAN body.
type hpfile struct {
	offset uint64
	bufsz  int64
	canpt  uint64
}

// Sizes of the struct without and with canpt.
const (
	hpfileSize    = 16
	hpfileCanSize = 24
)

// parseHPFile splits the arguments of an HPFI command: the path is everything
// before the byte that precedes the struct (that byte is the separator and may
// be anything, as in the reference), the struct is the last 16 or 24 bytes,
// big-endian. ok is false when args cannot hold a separator and the struct.
func parseHPFile(args string, withCanpt bool) (path string, hf hpfile, ok bool) {
	size := hpfileSize
	if withCanpt {
		size = hpfileCanSize
	}
	if len(args) < size+1 {
		return "", hf, false
	}
	st := args[len(args)-size:]
	hf.offset = binary.BigEndian.Uint64([]byte(st[0:8]))
	hf.bufsz = int64(binary.BigEndian.Uint64([]byte(st[8:16])))
	if withCanpt {
		hf.canpt = binary.BigEndian.Uint64([]byte(st[16:24]))
	}
	return args[:len(args)-size-1], hf, true
}

// hpfAhead makes transfers compute the keystream on a producer goroutine
// (tfproto.KeyPipe ahead mode). Off by default: the fused cipher on the
// session goroutine, with file and socket I/O on helper goroutines, moves
// data as fast with less CPU in all (see README, Performance).
var hpfAhead atomic.Bool

// Test hooks: a fault injected into the file I/O of transfers (nil = none).
var (
	hpfWriteFault atomic.Pointer[func(off int64, n int) error]
	hpfReadFault  atomic.Pointer[func(off int64) error]
)

// errHPFProtocol is a peer that broke the HPFI flow; the session is closed.
var errHPFProtocol = errors.New("hpfi: protocol error")

func cmdPut(s *session, args string) error    { return s.hpfPut(args, false) }
func cmdPutCan(s *session, args string) error { return s.hpfPut(args, true) }
func cmdGet(s *session, args string) error    { return s.hpfGet(args, false) }
func cmdGetCan(s *session, args string) error { return s.hpfGet(args, true) }

// hpfOpen checks the request and opens the file on the session goroutine. It
// returns nil after answering a FAILED line.
func (s *session) hpfOpen(args string, can, write bool) (*os.File, string, hpfile, error) {
	p, hf, ok := parseHPFile(args, can)
	if !ok {
		return nil, "", hf, s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(p)
	if !ok {
		return nil, "", hf, s.fail(tfproto.CodeAccessDenied)
	}
	if hf.bufsz < 0 {
		return nil, "", hf, s.fail(tfproto.CodeHPFAlloc)
	}
	if hf.offset > math.MaxInt64 {
		return nil, "", hf, s.fail(tfproto.CodeHPFSeek)
	}
	flag := os.O_RDONLY | syscall.O_NONBLOCK
	if write {
		flag = os.O_WRONLY | os.O_CREATE | syscall.O_NONBLOCK
	}
	f, err := s.fs.Root().OpenFile(rel, flag, 0o644)
	if err != nil {
		if vfs.IsEscape(err) {
			return nil, "", hf, s.fail(tfproto.CodeAccessDenied)
		}
		return nil, "", hf, s.fail(tfproto.CodeHPFOpen)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, "", hf, s.fail(tfproto.CodeHPFOpen)
	}
	return f, rel, hf, nil
}

// hpfNegotiate answers OK with the definitive buffer: never more than asked,
// never more than the configured cap.
func (s *session) hpfNegotiate(requested int64) (int64, error) {
	limit := s.srv.Config().HPFIMaxBuffer
	if limit <= 0 {
		limit = defaultHPFIMaxBuffer
	}
	bufsz := min(requested, limit)
	reply := make([]byte, 0, 11)
	reply = append(reply, "OK "...)
	reply = binary.BigEndian.AppendUint64(reply, uint64(bufsz))
	s.result = metrics.ResultOK
	return bufsz, s.conn.WriteFrame(reply)
}

// ---------------------------------------------------------------------------
// PUT / PUTCAN

// putPiece is a deciphered piece of a chunk on its way to the file.
type putPiece struct {
	buf *[]byte
	n   int
	off int64
}

// fileWriter writes pieces with pwrite on its own goroutine; it only touches
// the already-open file.
type fileWriter struct {
	f       *os.File
	work    chan putPiece
	done    chan struct{}
	mu      sync.Mutex
	err     error
	pending sync.WaitGroup
	onError func() // called once, on the writer goroutine, at the first error
}

func newFileWriter(f *os.File, onError func()) *fileWriter {
	w := &fileWriter{f: f, work: make(chan putPiece, 3), done: make(chan struct{}), onError: onError}
	go w.run()
	return w
}

func (w *fileWriter) run() {
	defer close(w.done)
	for p := range w.work {
		if w.failed() == nil {
			err := error(nil)
			if h := hpfWriteFault.Load(); h != nil {
				err = (*h)(p.off, p.n)
			}
			if err == nil {
				_, err = w.f.WriteAt((*p.buf)[:p.n], p.off)
			}
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				if w.onError != nil {
					w.onError()
				}
			}
		}
		tfproto.PutBuffer(p.buf)
		w.pending.Done()
	}
}

func (w *fileWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *fileWriter) write(p putPiece) {
	w.pending.Add(1)
	w.work <- p
}

// flush waits until every piece handed over so far is written (or dropped
// after an error) and returns the first write error.
func (w *fileWriter) flush() error {
	w.pending.Wait()
	return w.failed()
}

func (w *fileWriter) close() {
	close(w.work)
	<-w.done
}

// pipeCloser returns closePipe, which closes pipe once (later calls do
// nothing), and endPipe, for a deferred call with the flow's result: if pipe is
// still open it is closed after a nil error and aborted otherwise. A nil return
// is always at a call boundary and the session goes on, so the cipher state
// must be exact; after an error the session ends.
func pipeCloser(pipe *tfproto.KeyPipe) (closePipe func(), endPipe func(error)) {
	open := true
	closePipe = func() {
		if open {
			pipe.Close()
			open = false
		}
	}
	endPipe = func(err error) {
		if !open {
			return
		}
		open = false
		if err == nil {
			pipe.Close()
		} else {
			pipe.Abort()
		}
	}
	return closePipe, endPipe
}

// hpfPut serves PUT (can false) and PUTCAN (can true).
func (s *session) hpfPut(args string, can bool) (err error) {
	f, rel, hf, oerr := s.hpfOpen(args, can, true)
	if f == nil {
		return oerr
	}
	// remove is decided by the flow; the file is closed in every case. A
	// server-side cancel always removes it, whatever happens after it.
	remove := false
	var finMu sync.Mutex
	finSent, srvCancel := false, false
	defer func() {
		finMu.Lock()
		remove = remove || srvCancel
		finMu.Unlock()
		if cerr := f.Close(); cerr != nil && err == nil && !remove {
			s.log.Warn("hpfi close", "file", rel, "err", cerr)
		}
		if remove {
			if rerr := s.fs.Root().Remove(rel); rerr != nil {
				s.log.Warn("hpfi remove after cancel", "file", rel, "err", rerr)
			}
		}
	}()
	bufsz, err := s.hpfNegotiate(hf.bufsz)
	if err != nil {
		return err
	}

	// Server-side cancel (PUT): the writer goroutine sends HPFCANCEL then
	// HPFFIN as soon as a write fails, while the session keeps reading.
	sendFin := func(cancel bool) error {
		finMu.Lock()
		defer finMu.Unlock()
		if finSent {
			return nil
		}
		finSent, srvCancel = true, cancel
		if cancel {
			return s.conn.WriteFields(tfproto.Int64Field(tfproto.HPFCancel), tfproto.Int64Field(tfproto.HPFFin))
		}
		return s.conn.WriteInt64(tfproto.HPFFin)
	}
	var onError func()
	if !can {
		onError = func() {
			if werr := sendFin(true); werr != nil {
				s.log.Warn("hpfi send cancel", "err", werr)
			}
		}
	}
	w := newFileWriter(f, onError)
	defer w.close()

	pipe := tfproto.NewKeyPipe(s.conn.RxCipher(), hpfAhead.Load(), 8, int(min(bufsz, hpfPiece)))
	closePipe, endPipe := pipeCloser(pipe)
	defer func() { endPipe(err) }()
	var hdr [8]byte
	readCode := func() (int64, error) {
		pipe.Begin(8)
		if err := s.conn.ReadRaw(hdr[:]); err != nil {
			return 0, err
		}
		pipe.Decrypt(hdr[:], hdr[:])
		return int64(binary.BigEndian.Uint64(hdr[:])), nil
	}
	// readChunk deciphers an n-byte chunk piece by piece and hands the pieces
	// to the writer (or drops them when discard is set).
	off := int64(hf.offset)
	readChunk := func(n int64, discard bool) error {
		pipe.Begin(int(n))
		for n > 0 {
			b := tfproto.GetBuffer()
			m := int(min(n, hpfPiece))
			buf := (*b)[:m]
			if err := s.conn.ReadRaw(buf); err != nil {
				tfproto.PutBuffer(b)
				return err
			}
			pipe.Decrypt(buf, buf)
			n -= int64(m)
			if discard {
				tfproto.PutBuffer(b)
				continue
			}
			w.write(putPiece{buf: b, n: m, off: off})
			off += int64(m)
		}
		return nil
	}

	var chunks uint64
	var code int64
flow:
	for {
		h, err := readCode()
		if err != nil {
			return err
		}
		if h > 0 {
			if h > bufsz {
				return fmt.Errorf("%w: chunk of %d bytes over the negotiated %d", errHPFProtocol, h, bufsz)
			}
			finMu.Lock()
			discard := srvCancel
			finMu.Unlock()
			if err := readChunk(h, discard); err != nil {
				return err
			}
			chunks++
			if can && hf.canpt > 0 && chunks%hf.canpt == 0 {
				// Cancellation point: report a write error now, so every
				// piece so far must have reached the file.
				if werr := w.flush(); werr != nil {
					s.log.Warn("hpfi write", "file", rel, "err", werr)
					remove = true
					return s.conn.WriteInt64(tfproto.HPFCancel)
				}
				if err := s.conn.WriteInt64(tfproto.HPFCont); err != nil {
					return err
				}
			}
			continue
		}
		switch h {
		case tfproto.HPFEnd, tfproto.HPFStop, tfproto.HPFCancel:
			code = h
		case tfproto.HPFFin:
			finMu.Lock()
			ok := finSent
			finMu.Unlock()
			if !can && ok {
				// The client answers the server's cancel with its FIN.
				closePipe()
				remove = true
				return nil
			}
			return fmt.Errorf("%w: HPFFIN before the server's", errHPFProtocol)
		default:
			return fmt.Errorf("%w: unexpected code %d", errHPFProtocol, h)
		}
		break flow
	}
	closePipe()
	werr := w.flush()
	if werr != nil {
		s.log.Warn("hpfi write", "file", rel, "err", werr)
	}
	if can {
		// PUTCAN ends here; no FIN handshake.
		remove = code == tfproto.HPFCancel || werr != nil
		return nil
	}
	if err := sendFin(false); err != nil {
		return err
	}
	finMu.Lock()
	remove = code == tfproto.HPFCancel || srvCancel
	finMu.Unlock()
	return s.hpfDrainUntilFin(bufsz)
}

// hpfDrainUntilFin reads codes until the client's HPFFIN, ignoring the
// terminating codes and discarding chunks that were in flight.
func (s *session) hpfDrainUntilFin(bufsz int64) error {
	var scratch *[]byte
	defer func() {
		if scratch != nil {
			tfproto.PutBuffer(scratch)
		}
	}()
	for {
		h, err := s.conn.ReadInt64()
		if err != nil {
			return err
		}
		switch {
		case h == tfproto.HPFFin:
			return nil
		case h > 0:
			if h > bufsz {
				return fmt.Errorf("%w: chunk of %d bytes over the negotiated %d", errHPFProtocol, h, bufsz)
			}
			if scratch == nil {
				scratch = tfproto.GetBuffer()
			}
			if err := s.discardChunk(h, *scratch); err != nil {
				return err
			}
		case h == tfproto.HPFEnd, h == tfproto.HPFStop, h == tfproto.HPFCancel:
		default:
			return fmt.Errorf("%w: unexpected code %d", errHPFProtocol, h)
		}
	}
}

// discardChunk reads and deciphers an n-byte chunk (to keep the cipher in
// step) and drops it.
func (s *session) discardChunk(n int64, scratch []byte) error {
	p := tfproto.NewKeyPipe(s.conn.RxCipher(), false)
	p.Begin(int(n))
	for n > 0 {
		m := int(min(n, int64(len(scratch))))
		if err := s.conn.ReadRaw(scratch[:m]); err != nil {
			p.Abort() // the session ends; the state no longer matters
			return err
		}
		p.Decrypt(scratch[:m], scratch[:m])
		n -= int64(m)
	}
	p.Close()
	return nil
}

// ---------------------------------------------------------------------------
// GET / GETCAN

// getPiece is a piece read from the file, at (*buf)[8:8+n] so that the chunk
// header fits in front of it; n == 0 is EOF.
type getPiece struct {
	buf *[]byte
	n   int
	err error
}

// fileReader reads pieces ahead with pread on its own goroutine; it only
// touches the already-open file.
type fileReader struct {
	out  chan getPiece
	stop chan struct{}
	done chan struct{}
}

func newFileReader(f *os.File, off int64, size int) *fileReader {
	r := &fileReader{out: make(chan getPiece, 2), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			b := tfproto.GetBuffer()
			var n int
			var err error
			if h := hpfReadFault.Load(); h != nil {
				err = (*h)(off)
			}
			if err == nil {
				n, err = readFullAt(f, (*b)[8:8+size], off)
			}
			if n == 0 && err == io.EOF {
				err = nil
			}
			if n > 0 {
				err = nil // report the error at the next read
			}
			off += int64(n)
			select {
			case r.out <- getPiece{buf: b, n: n, err: err}:
			case <-r.stop:
				tfproto.PutBuffer(b)
				return
			}
			if n == 0 {
				return
			}
		}
	}()
	return r
}

// readFullAt reads up to len(b) bytes at off, short only at EOF or on error.
func readFullAt(f *os.File, b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.ReadAt(b[n:], off+int64(n))
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// close stops the goroutine and returns the buffers it still holds.
func (r *fileReader) close() {
	close(r.stop)
	<-r.done
	for {
		select {
		case p := <-r.out:
			tfproto.PutBuffer(p.buf)
		default:
			return
		}
	}
}

// hpfGet serves GET (can false) and GETCAN (can true).
func (s *session) hpfGet(args string, can bool) error {
	f, rel, hf, err := s.hpfOpen(args, can, false)
	if f == nil {
		return err
	}
	defer f.Close()
	bufsz, err := s.hpfNegotiate(hf.bufsz)
	if err != nil {
		return err
	}

	// GET: a concurrent reader for the client's codes (HPFCANCEL, HPFFIN).
	var codes *getCodeReader
	if !can {
		codes = s.startGetCodeReader()
	}
	sentCancel, err := s.hpfSend(f, int64(hf.offset), bufsz, can, hf.canpt, codes)
	if err != nil {
		if codes != nil {
			// The connection is closed by the caller; the reader's read
			// fails and it exits.
			s.nc.Close()
			<-codes.done
		}
		return err
	}
	if sentCancel {
		s.log.Warn("hpfi read error; GET cancelled", "file", rel)
	}
	if can {
		return nil
	}
	// FIN handshake: the client's FIN first, then ours.
	<-codes.done
	if codes.err != nil {
		return codes.err
	}
	return s.conn.WriteInt64(tfproto.HPFFin)
}

// getCodeReader reads the client's codes during a GET.
type getCodeReader struct {
	cancel chan struct{} // closed at HPFCANCEL or HPFFIN
	done   chan struct{} // closed after HPFFIN (or an error)
	err    error
}

func (s *session) startGetCodeReader() *getCodeReader {
	r := &getCodeReader{cancel: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		cancelled := false
		stop := func() {
			if !cancelled {
				cancelled = true
				close(r.cancel)
			}
		}
		defer stop()
		for {
			code, err := s.conn.ReadInt64()
			if err != nil {
				r.err = err
				return
			}
			switch code {
			case tfproto.HPFCancel:
				stop()
			case tfproto.HPFFin:
				return
			default:
				r.err = fmt.Errorf("%w: client sent code %d during GET", errHPFProtocol, code)
				return
			}
		}
	}()
	return r
}

// hpfSend streams the file from off. It reports whether it ended the flow with
// HPFCANCEL (a read error); a flow the client stopped ends with no code.
func (s *session) hpfSend(f *os.File, off, bufsz int64, can bool, canpt uint64, codes *getCodeReader) (sentCancel bool, err error) {
	if bufsz == 0 {
		return false, s.conn.WriteInt64(tfproto.HPFEnd)
	}
	chunk := int(min(bufsz, hpfPiece))
	rd := newFileReader(f, off, chunk)
	defer rd.close()
	pipe := tfproto.NewKeyPipe(s.conn.TxCipher(), hpfAhead.Load(), 8, chunk)
	closePipe, endPipe := pipeCloser(pipe)
	defer func() { endPipe(err) }()
	sw := s.conn.NewRawWriter(2)
	defer sw.Close()
	var cancel <-chan struct{}
	if codes != nil {
		cancel = codes.cancel
	}
	var sent uint64
	for {
		var p getPiece
		select {
		case <-cancel:
			// Client cancel: stop sending; no END is emitted.
			return false, nil
		case p = <-rd.out:
		}
		if p.n == 0 {
			tfproto.PutBuffer(p.buf)
			code := tfproto.HPFEnd
			if p.err != nil {
				code = tfproto.HPFCancel
			}
			closePipe()
			if err := sw.Flush(); err != nil {
				return false, err
			}
			return p.err != nil, s.conn.WriteInt64(code)
		}
		b := (*p.buf)[:8+p.n]
		binary.BigEndian.PutUint64(b[:8], uint64(p.n))
		pipe.Begin(8)
		pipe.Encrypt(b[:8], b[:8])
		pipe.Begin(p.n)
		pipe.Encrypt(b[8:], b[8:])
		if err := sw.Send(p.buf, len(b)); err != nil {
			return false, err
		}
		sent++
		if can && canpt > 0 && sent%canpt == 0 {
			code, err := s.conn.ReadInt64()
			if err != nil {
				return false, err
			}
			if code != tfproto.HPFCont {
				// Anything but HPFCONT stops the flow at once, silently.
				return false, nil
			}
		}
	}
}
