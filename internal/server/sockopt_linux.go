package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/tfproto"
)

func errTooManyFiles() error { return syscall.EMFILE }

// tuneConn sets TCP_NODELAY and the reference server's keepalive defaults on an
// accepted socket and returns a function that re-arms TCP_QUICKACK, to be called
// after every read: Linux falls back to delayed ACKs, which would stall clients
// that send a header and its body in two writes (the official Python client does).
func tuneConn(nc net.Conn) (quickAck func()) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	tc.SetNoDelay(true)
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	raw.Control(func(fd uintptr) {
		// Reference defaults (WIRE.md §5.22): keepalive on, idle 3600 s,
		// interval 75 s, 9 probes, user timeout (idle+intvl*cnt)*1000-1 ms.
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 3600)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 75)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, (3600+75*9)*1000-1)
	})
	return tfproto.QuickAck(nc)
}
