package client

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoOOBEcho means the server did not echo an out-of-band byte in time.
var ErrNoOOBEcho = errors.New("client: no out-of-band echo")

// OOBPing sends one TCP out-of-band (urgent) byte on the session's socket and
// waits, until ctx ends (2 s without a deadline), for the server's urgent byte
// in return (WIRE.md §6). The byte also counts for SockCheck. The in-band
// stream is not affected, so it may run while a command is in progress, but
// not concurrently with another OOBPing: TCP keeps one urgent byte at a time.
func (c *Client) OOBPing(ctx context.Context) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return errors.New("client: OOB needs a TCP connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.Sendto(int(fd), []byte{'!'}, unix.MSG_OOB|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
	}); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("client: send OOB: %w", serr)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultUDPTimeout)
	}
	for {
		wait := time.Until(dl)
		if wait <= 0 || ctx.Err() != nil {
			return ErrNoOOBEcho
		}
		var got bool
		if err := rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
			ms := int(min(wait, 50*time.Millisecond) / time.Millisecond)
			if n, _ := unix.Poll(fds, max(ms, 1)); n != 1 || fds[0].Revents&unix.POLLPRI == 0 {
				return
			}
			var b [1]byte
			if n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_OOB|unix.MSG_DONTWAIT); err == nil && n == 1 {
				got = true
			}
		}); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if got {
			return nil
		}
	}
}
