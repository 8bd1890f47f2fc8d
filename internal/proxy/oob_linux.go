package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// TCP urgent ("out-of-band") bytes. Go's poller never waits for EPOLLPRI, and
// a lone urgent byte does not make a socket readable (Linux counts it out of
// the readable bytes), so an idle session's OOB keepalive would sit in the
// proxy until the next ordinary byte. oobWatcher is one epoll instance that
// waits for EPOLLPRI on every relayed socket and forwards each urgent byte as
// soon as it arrives; readPastMark covers the bytes that arrive together with
// ordinary data. SIGURG is never involved (no socket has an owner process).

// readPastMark does one ordinary read on src after splice stopped. When src is
// at an urgent mark and takeOOB is set, it first takes the urgent byte
// (returned as urgent, else urgent is -1); the read then skips the mark and
// returns the bytes after it. It waits, through Go's poller, until there is
// something to return. err is io.EOF at src's end of stream.
func readPastMark(src *net.TCPConn, buf []byte, takeOOB bool) (n, urgent int, err error) {
	urgent = -1
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, -1, err
	}
	rerr := rc.Read(func(fd uintptr) bool {
		if takeOOB && urgent < 0 {
			if mark, e := unix.IoctlGetInt(int(fd), unix.SIOCATMARK); e == nil && mark == 1 {
				if b, ok := recvOOBfd(int(fd)); ok {
					urgent = int(b)
				}
			}
		}
		m, e := unix.Read(int(fd), buf)
		switch {
		case e == unix.EINTR:
			return false
		case e == unix.EAGAIN:
			// Nothing after the mark yet: hand the urgent byte on now, else
			// wait for data.
			return urgent >= 0
		case e != nil:
			err = e
		case m == 0:
			err = io.EOF
		default:
			n = m
			quickAck(int(fd))
		}
		return true
	})
	if rerr != nil && err == nil {
		err = rerr
	}
	return n, urgent, err
}

// recvOOBfd takes the pending urgent byte of a socket, if there is one.
func recvOOBfd(fd int) (byte, bool) {
	var b [1]byte
	for {
		n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_OOB|unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		return b[0], err == nil && n == 1
	}
}

// sendOOB sends b as an urgent byte on c, waiting for buffer space if needed.
func sendOOB(c *net.TCPConn, b byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	werr := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte{b}, unix.MSG_OOB, nil)
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if werr != nil {
		return werr
	}
	if serr != nil {
		return fmt.Errorf("send urgent byte: %w", serr)
	}
	return nil
}

// oobWatcher forwards urgent bytes between the two sockets of every relay.
// Sockets are watched edge-triggered: an event comes with each arrival while
// an urgent byte is pending, so a byte that someone else took first (the
// relay at the mark) never leaves the watcher spinning.
type oobWatcher struct {
	p    *Proxy
	epfd int
	wake int // eventfd that ends wait

	mu    sync.Mutex
	peers map[int32]oobPair // socket fd → where its urgent bytes go
	done  chan struct{}
}

type oobPair struct{ src, dst *net.TCPConn }

func newOOBWatcher(p *Proxy) (*oobWatcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("proxy: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("proxy: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("proxy: epoll add: %w", err)
	}
	w := &oobWatcher{p: p, epfd: epfd, wake: wake, peers: make(map[int32]oobPair), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// register watches both sockets of a relay; the returned function stops
// watching them and must run before they are closed.
func (w *oobWatcher) register(a, b *net.TCPConn) (unregister func()) {
	fa, fb := w.add(a, b), w.add(b, a)
	return func() {
		w.del(a, fa)
		w.del(b, fb)
	}
}

func (w *oobWatcher) add(src, dst *net.TCPConn) int32 {
	rc, err := src.SyscallConn()
	if err != nil {
		return -1
	}
	fd := int32(-1)
	rc.Control(func(f uintptr) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(f), &unix.EpollEvent{Events: unix.EPOLLPRI | unix.EPOLLET, Fd: int32(f)}); err != nil {
			w.p.log.Warn("proxy: cannot watch for urgent bytes", "err", err)
			return
		}
		fd = int32(f)
		w.peers[fd] = oobPair{src, dst}
	})
	return fd
}

func (w *oobWatcher) del(c *net.TCPConn, fd int32) {
	if fd < 0 {
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.peers[fd]; ok && p.src == c {
		delete(w.peers, fd)
	}
	// While the socket is open its fd is ours; once closed the kernel has
	// dropped it from the epoll set already.
	rc.Control(func(f uintptr) { unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(f), nil) })
}

func (w *oobWatcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			w.p.log.Error("proxy: epoll wait", "err", err)
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(w.wake) {
				return
			}
			w.mu.Lock()
			pair, ok := w.peers[ev.Fd]
			w.mu.Unlock()
			if !ok {
				continue
			}
			w.forward(pair)
		}
	}
}

// forward moves src's pending urgent byte to dst.
func (w *oobWatcher) forward(pair oobPair) {
	rc, err := pair.src.SyscallConn()
	if err != nil {
		return
	}
	var b byte
	var ok bool
	if rc.Control(func(f uintptr) { b, ok = recvOOBfd(int(f)) }) != nil || !ok {
		return
	}
	// Never wait here for buffer space on dst: that would hold up every
	// other socket's urgent bytes. A full send buffer means the session is
	// busy, and an urgent byte that finds no room is dropped, as TCP itself
	// drops an urgent byte overtaken by the next one.
	wc, err := pair.dst.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	if wc.Control(func(f uintptr) { serr = unix.Sendto(int(f), []byte{b}, unix.MSG_OOB|unix.MSG_DONTWAIT, nil) }) == nil && serr == nil {
		w.p.oobFwd.Add(1)
	}
}

// close stops the watcher and waits for its goroutine.
func (w *oobWatcher) close() {
	unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-w.done
	unix.Close(w.epfd)
	unix.Close(w.wake)
}

// isRefused reports an ICMP port-unreachable surfaced on a connected UDP
// socket.
func isRefused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }
