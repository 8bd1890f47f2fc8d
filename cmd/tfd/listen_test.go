package main

import (
	"net"
	"strings"
	"testing"
)

// TestListenBoth: the UDP services get the TCP listener's port number, also
// when the kernel picks it; a UDP port already taken is an error.
func TestListenBoth(t *testing.T) {
	ln, pc, err := listenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	tcp, udp := ln.Addr().(*net.TCPAddr), pc.LocalAddr().(*net.UDPAddr)
	if tcp.Port == 0 || tcp.Port != udp.Port || !udp.IP.Equal(tcp.IP) {
		t.Fatalf("tcp %v udp %v", tcp, udp)
	}
	// Take a UDP port, then ask for TCP and UDP on it.
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if l2, p2, err := listenBoth(busy.LocalAddr().String()); err == nil {
		l2.Close()
		p2.Close()
		t.Fatal("listened on a UDP port already taken")
	} else if !strings.Contains(err.Error(), "listen") {
		t.Fatalf("error %v", err)
	}
}
