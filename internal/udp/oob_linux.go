package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// OOB answers TCP out-of-band keepalive bytes (WIRE.md §6): each urgent byte a
// client sends is read, counted for SOCKCHECK and echoed back as an urgent byte.
//
// Go's runtime uses SIGURG for goroutine preemption, so the kernel's urgent-data
// signal cannot be used. Instead one epoll instance watches EPOLLPRI on every
// registered socket and one goroutine reads the byte with recv(MSG_OOB) and
// answers with send(MSG_OOB). Both calls are made inside the connection's
// RawConn.Control, which holds a reference on the descriptor, so a socket
// closed meanwhile is never confused with a new one that reuses its number.
// SO_OOBINLINE stays off: the urgent byte never enters the in-band stream,
// whose reader skips it.
type OOB struct {
	epfd, evfd int
	log        *slog.Logger

	mu      sync.Mutex
	regs    map[uint64]*oobReg
	next    uint64
	started bool // the loop runs from the first Add on
	done    chan struct{}
}

type oobReg struct {
	rc   syscall.RawConn
	sess *Session
}

// wakeID is the epoll token of the eventfd that stops the loop.
const wakeID = 0

// NewOOB makes the out-of-band watcher; its goroutine starts with the first
// watched socket.
func NewOOB(log *slog.Logger) (*OOB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("oob: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("oob: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("oob: epoll_ctl: %w", err)
	}
	return &OOB{epfd: epfd, evfd: evfd, log: log, regs: make(map[uint64]*oobReg), next: wakeID + 1, done: make(chan struct{})}, nil
}

func setToken(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func token(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Add watches nc (a TCP connection) for out-of-band bytes, counting them on
// sess. The returned function stops watching; call it before closing nc.
func (o *OOB) Add(nc net.Conn, sess *Session) (remove func(), err error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("oob: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("oob: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.regs == nil {
		return nil, errors.New("oob: closed")
	}
	id := o.next
	o.next++
	var cerr error
	err = rc.Control(func(fd uintptr) {
		// Urgent bytes must never enter the in-band stream (off is the
		// default; make sure).
		if cerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 0); cerr != nil {
			return
		}
		// Edge-triggered: one report per urgent byte, and no busy loop on a
		// socket whose error or hang-up is reported until its session ends.
		ev := unix.EpollEvent{Events: unix.EPOLLPRI | unix.EPOLLET}
		setToken(&ev, id)
		cerr = unix.EpollCtl(o.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("oob: watch socket: %w", err)
	}
	o.regs[id] = &oobReg{rc: rc, sess: sess}
	if !o.started {
		o.started = true
		go o.loop()
	}
	return func() { o.remove(id) }, nil
}

func (o *OOB) remove(id uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.regs[id]
	if !ok {
		return
	}
	delete(o.regs, id)
	// Fails harmlessly if the socket is already closed: closing it removed
	// it from the epoll set.
	r.rc.Control(func(fd uintptr) { unix.EpollCtl(o.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
}

// Len returns the number of watched sockets.
func (o *OOB) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.regs)
}

// Close stops the watcher and waits for its goroutine.
func (o *OOB) Close() error {
	o.mu.Lock()
	if o.regs == nil {
		o.mu.Unlock()
		return nil
	}
	o.regs = nil
	started := o.started
	o.mu.Unlock()
	if !started {
		unix.Close(o.evfd)
		return unix.Close(o.epfd)
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(o.evfd, one[:]); err != nil {
		return fmt.Errorf("oob: wake: %w", err)
	}
	<-o.done
	unix.Close(o.evfd)
	return unix.Close(o.epfd)
}

func (o *OOB) loop() {
	defer close(o.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(o.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue // the runtime's preemption signals interrupt the wait
			}
			o.log.Error("oob: epoll_wait failed; out-of-band keepalive stops", "err", err)
			return
		}
		for i := range events[:n] {
			id := token(&events[i])
			if id == wakeID {
				return
			}
			o.handle(id, events[i].Events)
		}
	}
}

// handle reads and answers the urgent byte of one socket. It holds o.mu so
// that remove cannot run meanwhile; both syscalls are non-blocking.
func (o *OOB) handle(id uint64, ev uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.regs[id]
	if !ok {
		return
	}
	r.rc.Control(func(fd uintptr) {
		if ev&unix.EPOLLPRI != 0 {
			r.sess.mu.Lock()
			takeOOB(int(fd), r.sess)
			r.sess.mu.Unlock()
		}
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			// The connection is dead; its session will end and remove it.
			unix.EpollCtl(o.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		}
	})
}

// takeOOB reads a pending urgent byte, if any, counts it and answers it, or
// keeps the answer pending (see flushEcho). The caller holds sess.mu. Two
// callers racing for one byte are fine: the kernel gives it to one.
func takeOOB(fd int, sess *Session) {
	var b [1]byte
	if n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_OOB|unix.MSG_DONTWAIT); err == nil && n == 1 {
		sess.CountOOB()
		sess.hasEcho, sess.echo = true, b[0]
	}
	flushEcho(fd, sess)
}

// flushEcho sends the pending answer once the urgent mark is at the in-band
// read position. TCP keeps one urgent mark: if the client's next urgent byte
// arrived while unread in-band data still lay before this one's mark, the
// kernel would turn this urgent byte into in-band data and corrupt the stream.
// Answering only when nothing unread lies before the mark (at once for a
// session waiting for its next command, after the session has read up to the
// mark otherwise) makes "wait for the answer before the next probe", what a
// keepalive client does, enough to keep the stream intact. Every in-band read
// goes through Conn, which stops at the mark and calls this after each read,
// so the moment is never missed. The caller holds sess.mu.
func flushEcho(fd int, sess *Session) {
	if !sess.hasEcho {
		return
	}
	if at, err := unix.IoctlGetInt(fd, unix.SIOCATMARK); err != nil || at == 0 {
		return
	}
	sess.hasEcho = false
	// Best effort: a full send buffer drops the answer, never blocks.
	unix.Sendto(fd, []byte{sess.echo}, unix.MSG_OOB|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
}

// Conn wraps a TCP connection so that its in-band reads never lose an urgent
// byte, which they otherwise can: with SO_OOBINLINE off, an in-band read that
// starts at the urgent mark skips the urgent byte and the kernel then forgets
// it, so a probe that arrives while the session reads (before the handshake,
// or during an upload) would go unanswered and uncounted. The epoll watcher
// cannot win that race; this Conn removes it. Each read, under sess.mu, first
// peeks how much in-band data is there (a peek never makes the kernel forget
// the urgent byte), then takes any urgent byte (counted on sess), then reads
// only the peeked amount, which ends before any urgent byte that arrived
// meanwhile, then sends a pending answer if the mark is reached (flushEcho).
func Conn(nc net.Conn, sess *Session) (net.Conn, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, errors.New("oob: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("oob: %w", err)
	}
	return &oobConn{TCPConn: tc, rc: rc, sess: sess}, nil
}

type oobConn struct {
	*net.TCPConn
	rc   syscall.RawConn
	sess *Session
}

// Read reads in-band data like net.TCPConn.Read (deadlines included), taking
// any urgent byte first.
func (c *oobConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	recvRetry := func(fd int, p []byte, flags int) (int, error) {
		for {
			k, _, err := unix.Recvfrom(fd, p, flags)
			if err != unix.EINTR {
				return k, err
			}
		}
	}
	err := c.rc.Read(func(fd uintptr) bool {
		c.sess.mu.Lock()
		defer c.sess.mu.Unlock()
		// MSG_TRUNC with MSG_PEEK: how much, without copying. Like a read,
		// the peek stops at the urgent mark (or skips the urgent byte when it
		// starts there), so the read below never goes past a mark.
		var avail int
		avail, rerr = recvRetry(int(fd), b, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		takeOOB(int(fd), c.sess)
		switch {
		case rerr == unix.EAGAIN:
			rerr = nil
			return false // wait for data
		case rerr != nil || avail == 0: // error or end of stream
			n = 0
			return true
		}
		n, rerr = recvRetry(int(fd), b[:avail], unix.MSG_DONTWAIT)
		flushEcho(int(fd), c.sess)
		if rerr == unix.EAGAIN {
			rerr = nil
			return false
		}
		return true
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
