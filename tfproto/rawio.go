package tfproto

import "sync"

// Raw access for data paths that encipher with a KeyPipe (HPFI transfers):
// the caller owns one direction's cipher state for the duration and moves the
// already-enciphered bytes itself.

// ReadRaw reads exactly len(b) bytes without deciphering them. Decipher them
// with a KeyPipe over RxCipher, as one call per protocol field.
func (c *Conn) ReadRaw(b []byte) error {
	return c.readFull(b)
}

// WriteRaw sends b unchanged (already enciphered by the caller) in one write,
// under the write lock.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flush(b)
}

// TxCipher returns the TX state. Only a goroutine that is the connection's sole
// writer may use it, and only between its own writes (a KeyPipe over it must be
// closed before any other Write call).
func (c *Conn) TxCipher() *Cipher {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.tx
}

// RawWriter sends already-enciphered buffers on its own goroutine, in order,
// so that enciphering the next piece of a transfer overlaps with the write
// (and, on loopback, the peer's receive work the kernel does in that write) of
// the previous one. It only touches the socket.
type RawWriter struct {
	c       *Conn
	work    chan rawBuf
	done    chan struct{}
	pending sync.WaitGroup
	mu      sync.Mutex
	err     error
}

type rawBuf struct {
	p *[]byte
	n int
}

// NewRawWriter starts a writer that holds at most depth buffers in its queue.
func (c *Conn) NewRawWriter(depth int) *RawWriter {
	w := &RawWriter{c: c, work: make(chan rawBuf, depth), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *RawWriter) run() {
	defer close(w.done)
	for b := range w.work {
		if w.Err() == nil {
			if err := w.c.WriteRaw((*b.p)[:b.n]); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		PutBuffer(b.p)
		w.pending.Done()
	}
}

// Err returns the first write error so far.
func (w *RawWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Send queues the first n bytes of p, a buffer from GetBuffer, and takes
// ownership of it. It returns the first write error so far (the buffer is
// then dropped).
func (w *RawWriter) Send(p *[]byte, n int) error {
	if err := w.Err(); err != nil {
		PutBuffer(p)
		return err
	}
	w.pending.Add(1)
	w.work <- rawBuf{p, n}
	return nil
}

// Flush waits until every queued buffer is written and returns the first
// write error.
func (w *RawWriter) Flush() error {
	w.pending.Wait()
	return w.Err()
}

// Close flushes and stops the goroutine.
func (w *RawWriter) Close() error {
	err := w.Flush()
	close(w.work)
	<-w.done
	return err
}
