package proxy_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/proxy"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func needIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// startProxy runs a proxy on host (TCP and UDP, one port) to upstream.
func startProxy(t *testing.T, host, upstream string, changes ...func(*proxy.Config)) (string, *proxy.Proxy) {
	t.Helper()
	if host == "127.0.0.1" {
		return servertest.StartProxy(t, upstream, changes...)
	}
	cfg := proxy.Config{Upstream: upstream, ShutdownTimeout: 2 * time.Second}
	for _, ch := range changes {
		ch(&cfg)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String(), p
}

// dialVia connects a Go client to srv through the proxy at addr.
func dialVia(t *testing.T, srv *servertest.Server, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(servertest.Context(t), addr, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestProxyAcrossAddressFamilies(t *testing.T) {
	needIPv6(t)
	tests := []struct{ name, serverListen, proxyHost string }{
		{"IPv4 client to IPv6 server", "[::1]:0", "127.0.0.1"},
		{"IPv6 client to IPv4 server", "127.0.0.1:0", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.Start(t, func(c *config.Config) { c.Listen = tt.serverListen })
			addr, p := startProxy(t, tt.proxyHost, srv.Direct)
			c := dialVia(t, srv, addr)
			ctx := servertest.Context(t)
			for _, n := range []int{0, 1, 1000, tfproto.MaxFrame - 5} {
				in := strings.Repeat("z", n)
				if got, err := c.Echo(ctx, in); err != nil || got != in {
					t.Fatalf("echo %d bytes: %d bytes, %v", n, len(got), err)
				}
			}
			if st := p.Stats(); st.TotalTCP != 1 || st.ActiveTCP != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Full-size frames of random text keep their bytes through the proxy, and a
// client that goes away ends its server session and its relay.
func TestProxyMaxFramesAndClientGone(t *testing.T) {
	srv := servertest.Start(t)
	addr, p := startProxy(t, "127.0.0.1", srv.Direct)
	c := dialVia(t, srv, addr)
	ctx := servertest.Context(t)
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	buf := make([]byte, tfproto.MaxFrame-5) // "ECHO " + text = one full frame
	for i := range 6 {
		rand.Read(buf)
		for j := range buf {
			buf[j] = letters[int(buf[j])%len(letters)]
		}
		in := string(buf)
		got, err := c.Echo(ctx, in)
		if err != nil || got != in {
			t.Fatalf("frame %d: %d bytes back, equal %v, %v", i, len(got), got == in, err)
		}
	}
	if n := srv.Srv.ActiveSessions(); n != 1 {
		t.Fatalf("server sessions %d", n)
	}
	c.Close()
	waitFor(t, "the server session to end", func() bool { return srv.Srv.ActiveSessions() == 0 })
	waitFor(t, "the relay to end", func() bool { return p.Stats().ActiveTCP == 0 })
}

func TestProxyManyConcurrentSessions(t *testing.T) {
	srv := servertest.Start(t)
	addr, p := startProxy(t, "127.0.0.1", srv.Direct)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(servertest.Context(t), addr, srv.Options())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ctx := servertest.Context(t)
			for j := range 5 {
				in := fmt.Sprintf("session %d message %d %s", i, j, strings.Repeat("p", i*997))
				got, err := c.Echo(ctx, in)
				if err != nil || got != in {
					errs <- fmt.Errorf("session %d: %q, %v", i, truncate(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := p.Stats(); st.TotalTCP != n {
		t.Fatalf("TotalTCP %d want %d", st.TotalTCP, n)
	}
	waitFor(t, "all relays to end", func() bool { return p.Stats().ActiveTCP == 0 })
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawUpstream is a plain TCP server standing in for tfd, handing each
// accepted connection to the test.
func rawUpstream(t *testing.T, host string) (string, <-chan *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *net.TCPConn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			ch <- c.(*net.TCPConn)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), ch
}

func accept(t *testing.T, ch <-chan *net.TCPConn) *net.TCPConn {
	t.Helper()
	select {
	case c := <-ch:
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("upstream got no connection")
		return nil
	}
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func TestProxyClientCloseClosesUpstream(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, p := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(u, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("upstream read %q, %v", buf, err)
	}
	c.Close()
	if n, err := u.Read(buf); err != io.EOF {
		t.Fatalf("upstream after client close: %d, %v; want EOF", n, err)
	}
	u.Close()
	waitFor(t, "the relay to end", func() bool { return p.Stats().ActiveTCP == 0 })
}

func TestProxyHalfClose(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, _ := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	c.Write([]byte("request"))
	c.CloseWrite()
	got, err := io.ReadAll(u)
	if err != nil || string(got) != "request" {
		t.Fatalf("upstream read %q, %v", got, err)
	}
	// The other direction still flows after the client's half-close.
	u.Write([]byte("late reply"))
	u.CloseWrite()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "late reply" {
		t.Fatalf("client read %q, %v", got, err)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	addr, p := startProxy(t, "127.0.0.1", dead)
	c := dialTCP(t, addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("client read through a proxy with no upstream: %d, %v; want closed", n, err)
	}
	waitFor(t, "the relay to end", func() bool { return p.Stats().ActiveTCP == 0 })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyUpstreamDiesMidSession(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, p := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	c.Write([]byte("x"))
	io.ReadFull(u, make([]byte, 1))
	u.SetLinger(0)
	u.Close() // reset
	_, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatal("client not closed after the upstream reset")
	}
	waitFor(t, "the relay to end", func() bool { return p.Stats().ActiveTCP == 0 })
}

// Random bytes both ways at once, compared by hash at the far end.
func TestProxyLargeTransferIntegrity(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, _ := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	const size = 32 << 20
	send := func(w *net.TCPConn) ([32]byte, error) {
		h := sha256.New()
		_, err := io.CopyN(io.MultiWriter(w, h), rand.Reader, size)
		if err == nil {
			err = w.CloseWrite()
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum, err
	}
	recv := func(r io.Reader) ([32]byte, int64, error) {
		h := sha256.New()
		n, err := io.Copy(h, r)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum, n, err
	}
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	var wg sync.WaitGroup
	var sentUp, sentDown [32]byte
	var errUp, errDown error
	var gotUp, gotDown result
	wg.Add(4)
	go func() { defer wg.Done(); sentUp, errUp = send(c) }()
	go func() { defer wg.Done(); sentDown, errDown = send(u) }()
	go func() { defer wg.Done(); s, n, err := recv(u); gotUp = result{s, n, err} }()
	go func() { defer wg.Done(); s, n, err := recv(c); gotDown = result{s, n, err} }()
	wg.Wait()
	if errUp != nil || errDown != nil || gotUp.err != nil || gotDown.err != nil {
		t.Fatalf("errors: %v %v %v %v", errUp, errDown, gotUp.err, gotDown.err)
	}
	if gotUp.n != size || gotUp.sum != sentUp {
		t.Fatalf("client→server: %d bytes, hash match %v", gotUp.n, gotUp.sum == sentUp)
	}
	if gotDown.n != size || gotDown.sum != sentDown {
		t.Fatalf("server→client: %d bytes, hash match %v", gotDown.n, gotDown.sum == sentDown)
	}
}

func TestProxyShutdown(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	p, err := proxy.New(proxy.Config{Upstream: up, ShutdownTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, nil) }()
	c := dialTCP(t, ln.Addr().String())
	u := accept(t, conns)
	c.Write([]byte("a"))
	io.ReadFull(u, make([]byte, 1))
	cancel()
	// The idle session outlives the grace period and is cut; Serve returns.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatal("client not closed by the shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("proxy still accepts after shutdown")
	}
	if err := p.Serve(context.Background(), ln, nil); err == nil {
		t.Fatal("Serve after shutdown succeeded")
	}
}

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, up := range []string{"", "nohost", "::1"} {
		if _, err := proxy.New(proxy.Config{Upstream: up}); err == nil {
			t.Errorf("upstream %q accepted", up)
		}
	}
}

// --- TCP urgent (out-of-band) bytes --------------------------------------

// recvOOB waits up to 10 s for an urgent byte on c.
func recvOOB(t *testing.T, c *net.TCPConn) byte {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	var rerr error
	rc.Control(func(fd uintptr) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
			if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
				rerr = err
				return
			}
			if pfd[0].Revents&unix.POLLPRI != 0 {
				_, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_OOB)
				return
			}
		}
		rerr = errors.New("no urgent byte within 10 s")
	})
	if rerr != nil {
		t.Fatal(rerr)
	}
	return b[0]
}

func sendOOB(t *testing.T, c *net.TCPConn, b byte) {
	t.Helper()
	rc, _ := c.SyscallConn()
	var err error
	rc.Control(func(fd uintptr) { err = unix.Sendto(int(fd), []byte{b}, unix.MSG_OOB, nil) })
	if err != nil {
		t.Fatal(err)
	}
}

// An urgent byte on an idle session is forwarded at once both ways, and the
// ordinary stream around it is intact.
func TestProxyForwardsUrgentBytes(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, p := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	for i := range 5 {
		sendOOB(t, c, byte('a'+i))
		if got := recvOOB(t, u); got != byte('a'+i) {
			t.Fatalf("probe %d: upstream got urgent %q", i, got)
		}
		sendOOB(t, u, byte('A'+i))
		if got := recvOOB(t, c); got != byte('A'+i) {
			t.Fatalf("probe %d: client got urgent %q", i, got)
		}
	}
	// Ordinary bytes around the urgent ones arrive whole, without them.
	c.Write([]byte("before"))
	sendOOB(t, c, '!')
	c.Write([]byte("after"))
	if got := recvOOB(t, u); got != '!' {
		t.Fatalf("urgent in a burst: %q", got)
	}
	c.CloseWrite()
	got, err := io.ReadAll(u)
	if err != nil || string(got) != "beforeafter" {
		t.Fatalf("upstream stream %q, %v", got, err)
	}
	// The counter moves just after the byte left.
	waitFor(t, "11 urgent bytes counted", func() bool { return p.Stats().OOBBytes == 11 })
}

// An urgent byte sent at once after connecting, before the proxy has its
// upstream connection (the reference answers OOB in any state, even before
// the handshake), still reaches the upstream without any byte after it.
func TestProxyUrgentBeforeUpstream(t *testing.T) {
	for i := range 5 {
		up, conns := rawUpstream(t, "127.0.0.1")
		addr, _ := startProxy(t, "127.0.0.1", up)
		c := dialTCP(t, addr)
		sendOOB(t, c, byte('0'+i))
		u := accept(t, conns)
		if got := recvOOB(t, u); got != byte('0'+i) {
			t.Fatalf("try %d: upstream got urgent %q", i, got)
		}
		sendOOB(t, u, 'r')
		if got := recvOOB(t, c); got != 'r' {
			t.Fatalf("try %d: client got urgent %q", i, got)
		}
	}
}

// The OOB keepalive pattern: an urgent byte each way on an idle session,
// then a request and its reply. The relay must get past each urgent mark
// (TCP splice stops there for good) in both directions.
func TestProxyUrgentThenData(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, _ := startProxy(t, "127.0.0.1", up)
	c := dialTCP(t, addr)
	u := accept(t, conns)
	for i := range 4 {
		sendOOB(t, c, '!')
		if got := recvOOB(t, u); got != '!' {
			t.Fatalf("round %d: upstream got urgent %q", i, got)
		}
		sendOOB(t, u, '?')
		if got := recvOOB(t, c); got != '?' {
			t.Fatalf("round %d: client got urgent %q", i, got)
		}
		msg := fmt.Sprintf("ping %d", i)
		c.Write([]byte(msg))
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(u, b); err != nil || string(b) != msg {
			t.Fatalf("round %d: upstream read %q, %v", i, b, err)
		}
		u.Write([]byte("pong"))
		if _, err := io.ReadFull(c, b[:4]); err != nil || string(b[:4]) != "pong" {
			t.Fatalf("round %d: client read %q, %v", i, b[:4], err)
		}
	}
}

// Without OOB forwarding the urgent byte is dropped but the stream survives
// (a plain splice relay would end the stream at the urgent mark).
func TestProxyNoOOBKeepsStream(t *testing.T) {
	up, conns := rawUpstream(t, "127.0.0.1")
	addr, p := startProxy(t, "127.0.0.1", up, func(c *proxy.Config) { c.NoOOB = true })
	c := dialTCP(t, addr)
	u := accept(t, conns)
	c.Write([]byte("abc"))
	io.ReadFull(u, make([]byte, 3))
	sendOOB(t, c, '!')
	c.Write([]byte("def"))
	c.CloseWrite()
	got, err := io.ReadAll(u)
	if err != nil || string(got) != "def" {
		t.Fatalf("upstream stream %q, %v", got, err)
	}
	if st := p.Stats(); st.OOBBytes != 0 {
		t.Fatalf("OOBBytes %d with NoOOB", st.OOBBytes)
	}
}

// --- UDP -------------------------------------------------------------------

// udpEcho answers every datagram with "echo:" + datagram, twice when the
// datagram starts with "2".
func udpEcho(t *testing.T, host string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := append([]byte("echo:"), buf[:n]...)
			pc.WriteTo(reply, from)
			if n > 0 && buf[0] == '2' {
				pc.WriteTo(reply, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func udpClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func exchange(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	return string(buf[:n])
}

func TestProxyUDP(t *testing.T) {
	needIPv6(t)
	tests := []struct{ name, upHost, proxyHost string }{
		{"IPv4 to IPv4", "127.0.0.1", "127.0.0.1"},
		{"IPv4 to IPv6", "::1", "127.0.0.1"},
		{"IPv6 to IPv4", "127.0.0.1", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := udpEcho(t, tt.upHost)
			addr, p := startProxy(t, tt.proxyHost, up)
			a, b := udpClient(t, addr), udpClient(t, addr)
			for i := range 3 {
				for _, c := range []net.Conn{a, b} {
					msg := fmt.Sprintf("\x03 from %s #%d", c.LocalAddr(), i)
					if got := exchange(t, c, msg); got != "echo:"+msg {
						t.Fatalf("got %q", got)
					}
				}
			}
			// Every datagram the server sends back reaches the client.
			if got := exchange(t, a, "2x"); got != "echo:2x" {
				t.Fatalf("got %q", got)
			}
			buf := make([]byte, 100)
			if n, err := a.Read(buf); err != nil || string(buf[:n]) != "echo:2x" {
				t.Fatalf("second reply %q, %v", buf[:n], err)
			}
			// A large datagram passes whole.
			big := strings.Repeat("B", 60000)
			a.Write([]byte(big))
			n, err := a.Read(make([]byte, 70000))
			if err != nil || n != 4096 {
				// Replies are cut at 4 KiB (see udp.go); requests are not.
				t.Fatalf("big reply %d bytes, %v", n, err)
			}
			if st := p.Stats(); st.UDPSessions != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestProxyUDPTableBoundAndIdle(t *testing.T) {
	up := udpEcho(t, "127.0.0.1")
	addr, p := startProxy(t, "127.0.0.1", up, func(c *proxy.Config) {
		c.MaxUDPSessions = 2
		c.UDPIdleTimeout = 200 * time.Millisecond
	})
	cs := []net.Conn{udpClient(t, addr), udpClient(t, addr), udpClient(t, addr)}
	for i, c := range cs {
		if got := exchange(t, c, fmt.Sprint(i)); got != "echo:"+fmt.Sprint(i) {
			t.Fatalf("client %d: %q", i, got)
		}
	}
	st := p.Stats()
	if st.UDPSessions != 2 || st.UDPEvicted != 1 {
		t.Fatalf("after 3 sources with room for 2: %+v", st)
	}
	// The evicted (least recently used) source gets a new session.
	if got := exchange(t, cs[0], "again"); got != "echo:again" {
		t.Fatalf("evicted client: %q", got)
	}
	waitFor(t, "idle UDP sessions to expire", func() bool { return p.Stats().UDPSessions == 0 })
	if got := exchange(t, cs[1], "after idle"); got != "echo:after idle" {
		t.Fatalf("after expiry: %q", got)
	}
}
