package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

var errTooManyFiles = syscall.EMFILE

// relay is one proxied TCP session: the client's connection and ours to the
// upstream.
type relay struct {
	p      *Proxy
	client net.Conn

	mu       sync.Mutex
	upstream net.Conn
	aborted  bool
}

// run dials the upstream and relays both ways until both directions have
// ended (each end's EOF is passed on as a half-close) or one fails (then both
// connections are reset). A failed dial closes the client at once.
func (r *relay) run(ctx context.Context) {
	p := r.p
	log := p.log.With("client", r.client.RemoteAddr().String())
	defer r.client.Close()
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	var d net.Dialer
	up, err := d.DialContext(dctx, "tcp", p.cfg.Upstream)
	cancel()
	if err != nil {
		log.Warn("proxy: upstream unreachable; closing the client", "upstream", p.cfg.Upstream, "err", err)
		return
	}
	defer up.Close()
	r.mu.Lock()
	if r.aborted {
		r.mu.Unlock()
		return
	}
	r.upstream = up
	r.mu.Unlock()
	log.Debug("proxy: session start", "upstream", up.RemoteAddr().String())

	ct, cok := r.client.(*net.TCPConn)
	ut, uok := up.(*net.TCPConn)
	if cok && uok && p.oob != nil {
		unreg := p.oob.register(ct, ut)
		defer unreg()
	}
	errc := make(chan error, 2)
	go func() { errc <- r.pipe(up, r.client) }()
	go func() { errc <- r.pipe(r.client, up) }()
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			r.reset()
		}
	}
	if first != nil {
		log.Debug("proxy: session end", "err", first)
	} else {
		log.Debug("proxy: session end")
	}
}

// abort cuts the session (shutdown).
func (r *relay) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aborted = true
	r.client.Close()
	if r.upstream != nil {
		r.upstream.Close()
	}
}

// reset cuts both connections with a TCP reset, so a failure on one side is
// seen as one on the other, as it would be without the proxy.
func (r *relay) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range []net.Conn{r.client, r.upstream} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		if c != nil {
			c.Close()
		}
	}
}

// pipe copies src to dst until src's end of stream, which it passes on as a
// half-close of dst. It returns nil after a clean end, else the error.
func (r *relay) pipe(dst, src net.Conn) error {
	st, sok := src.(*net.TCPConn)
	dt, dok := dst.(*net.TCPConn)
	if !sok || !dok {
		if _, err := io.Copy(dst, src); err != nil {
			return err
		}
		return closeWrite(dst)
	}
	return r.spliceLoop(dt, st)
}

// spliceLoop relays between two TCP sockets with splice(2) (splice_linux.go)
// and handles what splice cannot: the kernel's TCP splice stops at an urgent
// mark and reports 0 bytes there exactly as at the end of the stream (a plain
// io.Copy would end the session there). Each time it does, one ordinary read
// finds out which it was: at the mark, the urgent byte is taken out of band
// (and forwarded) and the read returns the bytes after it, which are written
// before splicing resumes; at the true end, the read reports EOF. Without a
// pipe (out of file descriptors) every read is an ordinary one.
func (r *relay) spliceLoop(dst, src *net.TCPConn) error {
	pp := newSplicePipe()
	if pp != nil {
		defer pp.close()
	}
	var buf []byte
	for {
		if pp != nil {
			if _, err := pp.relay(dst, src); err != nil {
				return err
			}
		}
		if buf == nil {
			buf = make([]byte, 64<<10)
		}
		n, urgent, err := readPastMark(src, buf, r.p.oob != nil)
		if urgent >= 0 {
			if err := sendOOB(dst, byte(urgent)); err != nil {
				return err
			}
			r.p.oobFwd.Add(1)
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return dst.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
