package udp

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

func oobSend(t *testing.T, nc net.Conn, b byte) {
	t.Helper()
	rc, _ := nc.(syscall.Conn).SyscallConn()
	var err error
	rc.Control(func(fd uintptr) { err = unix.Sendto(int(fd), []byte{b}, unix.MSG_OOB, nil) })
	if err != nil {
		t.Fatal(err)
	}
}

func oobRecv(t *testing.T, nc net.Conn) byte {
	t.Helper()
	rc, _ := nc.(syscall.Conn).SyscallConn()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		var b [1]byte
		var n int
		var err error = unix.EAGAIN
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
			if k, _ := unix.Poll(fds, 100); k == 1 && fds[0].Revents&unix.POLLPRI != 0 {
				n, _, err = unix.Recvfrom(int(fd), b[:], unix.MSG_OOB|unix.MSG_DONTWAIT)
			}
		})
		if err == nil && n == 1 {
			return b[0]
		}
	}
	t.Fatal("no urgent byte")
	return 0
}

func TestOOBEchoCountRemove(t *testing.T) {
	o, err := NewOOB(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	srvConn, cli := tcpPair(t)
	var sess Session
	remove, err := o.Add(srvConn, &sess)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range []byte{'!', 0x00, 0x80} {
		oobSend(t, cli, b)
		if got := oobRecv(t, cli); got != b {
			t.Fatalf("echo %#x, want %#x", got, b)
		}
		if sess.OOB() != uint32(i+1) {
			t.Fatalf("counter %d after %d bytes", sess.OOB(), i+1)
		}
	}
	// In-band data still flows, without the urgent bytes.
	if _, err := cli.Write([]byte("in-band")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	srvConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFull(srvConn, buf); err != nil || string(buf) != "in-band" {
		t.Fatalf("in-band %q %v", buf, err)
	}
	remove()
	remove() // idempotent
	if o.Len() != 0 {
		t.Fatal("still registered")
	}
	// Unwatched: a further urgent byte is not counted.
	oobSend(t, cli, 'x')
	if _, err := cli.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := readFull(srvConn, one); err != nil || one[0] != 'y' {
		t.Fatalf("in-band after unwatch %q %v", one, err)
	}
	if sess.OOB() != 3 {
		t.Fatalf("counted after remove: %d", sess.OOB())
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestOOBClosedSocketAndClose(t *testing.T) {
	o, err := NewOOB(nil)
	if err != nil {
		t.Fatal(err)
	}
	srvConn, cli := tcpPair(t)
	var sess Session
	remove, err := o.Add(srvConn, &sess)
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()     // the peer goes away: an error/hang-up event at most
	srvConn.Close() // closed before remove: remove must still work
	remove()
	if _, err := o.Add(srvConn, &sess); err == nil {
		t.Fatal("Add of a closed conn succeeded")
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Add(srvConn, &sess); err == nil {
		t.Fatal("Add after Close succeeded")
	}
	// A watcher that never watched anything closes without a goroutine.
	o2, err := NewOOB(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Add(&net.UDPConn{}, &sess); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}

// With Conn and the watcher together (the server's setup), every probe is
// answered and counted once, whether it arrives while the session reads (Conn
// takes it) or while it waits (the watcher does), and the in-band bytes come
// through intact.
func TestConnTakesUrgentBytesWhileReading(t *testing.T) {
	srvConn, cli := tcpPair(t)
	var sess Session
	c, err := Conn(srvConn, &sess)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOOB(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	remove, err := o.Add(srvConn, &sess)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	const rounds = 100
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 6*rounds)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := readFull(c, buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	for i := range rounds {
		if _, err := cli.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		oobSend(t, cli, byte(i))
		if b := oobRecv(t, cli); b != byte(i) {
			t.Fatalf("round %d: echo %d", i, b)
		}
		if _, err := cli.Write([]byte("def")); err != nil {
			t.Fatal(err)
		}
	}
	if s := <-got; s != strings.Repeat("abcdef", rounds) {
		t.Fatalf("in-band data %q", s)
	}
	if sess.OOB() != rounds {
		t.Fatalf("counted %d of %d", sess.OOB(), rounds)
	}
	// Deadlines and end of stream behave as on a net.TCPConn.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	cli.(*net.TCPConn).CloseWrite() // FIN: end of stream (a close would reset)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after peer close: %v", err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read %d %v", n, err)
	}
	if _, err := Conn(&net.UDPConn{}, &sess); err == nil {
		t.Fatal("Conn of a UDP conn")
	}
}

// BenchmarkConnRead compares in-band reads through Conn with plain TCP reads
// (64 KiB reads of a 1 MiB-per-op stream over loopback).
func BenchmarkConnRead(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(map[bool]string{false: "tcp", true: "oobconn"}[wrapped], func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			cli, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			srv, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			var r net.Conn = srv
			if wrapped {
				if r, err = Conn(srv, &Session{}); err != nil {
					b.Fatal(err)
				}
			}
			const perOp = 1 << 20
			go func() {
				buf := make([]byte, 64<<10)
				for range b.N * (perOp / len(buf)) {
					if _, err := cli.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 64<<10)
			b.SetBytes(perOp)
			b.ResetTimer()
			total := 0
			for total < b.N*perOp {
				n, err := r.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				total += n
			}
		})
	}
}
