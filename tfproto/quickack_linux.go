package tfproto

import (
	"net"

	"golang.org/x/sys/unix"
)

// QuickAck returns a function that re-arms TCP_QUICKACK on nc, for Conn.AfterRead,
// or nil when nc is not a TCP connection. Linux falls back to delayed ACKs after
// a while; a peer that sends a header and its body in two writes with Nagle on
// (the reference server, the official Python client) then waits ~40 ms for each
// ACK. Both tfd and the Go client set it.
func QuickAck(nc net.Conn) func() {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() {
		raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
}
