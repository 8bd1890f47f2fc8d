package tfproto

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func TestQuickAck(t *testing.T) {
	if QuickAck(fakeConn(nil)) != nil {
		t.Fatal("QuickAck on a non-TCP conn must be nil")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw, _ := nc.(*net.TCPConn).SyscallConn()
	get := func() (v int) {
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK) })
		return v
	}
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0) })
	if get() != 0 {
		t.Skip("kernel does not report TCP_QUICKACK")
	}
	QuickAck(nc)()
	if get() != 1 {
		t.Fatal("TCP_QUICKACK not re-armed")
	}
}
