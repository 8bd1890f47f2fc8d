package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/tfproto"
)

// udpProbe sends datagrams from one UDP source and reads replies.
type udpProbe struct {
	t  *testing.T
	nc net.Conn
}

func newProbe(t *testing.T, addr string) *udpProbe {
	t.Helper()
	nc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &udpProbe{t: t, nc: nc}
}

// ask sends pkt and returns the reply. A request that gets no reply is asked
// with noReply: it is followed by a HOSTCHECK whose reply must come first.
func (p *udpProbe) ask(pkt []byte) []byte {
	p.t.Helper()
	if _, err := p.nc.Write(pkt); err != nil {
		p.t.Fatal(err)
	}
	return p.read()
}

func (p *udpProbe) read() []byte {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	n, err := p.nc.Read(buf)
	if err != nil {
		p.t.Fatalf("no UDP reply: %v", err)
	}
	return buf[:n]
}

// noReply checks that pkt is ignored: the server answers datagrams in order, so
// the HOSTCHECK sent after it must be the first reply.
func (p *udpProbe) noReply(pkt []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(pkt); err != nil {
		p.t.Fatal(err)
	}
	if got := p.ask([]byte{0}); !bytes.Equal(got, []byte{1}) {
		p.t.Fatalf("datagram % x got a reply %q", pkt, got)
	}
}

type fakeTLBPool struct{ tuples []string }

func (p fakeTLBPool) NewPicker() tlb.Picker { return &fakeTLBPicker{tuples: p.tuples} }

type fakeTLBPicker struct {
	tuples []string
	i      int
}

func (p *fakeTLBPicker) Next() (string, error) {
	if len(p.tuples) == 0 {
		return "", tlb.ErrEmpty
	}
	t := p.tuples[p.i%len(p.tuples)]
	p.i++
	return t, nil
}

func TestProcKeyUniqueAndStable(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	seen := map[string]bool{}
	for range 5 {
		c := srv.Dial(t)
		k, err := c.ProcKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) > 39 || !strings.HasPrefix(k, "/") || strings.Trim(k[1:], "0123456789") != "" {
			t.Fatalf("key %q", k)
		}
		if seen[k] {
			t.Fatalf("key %q handed out twice", k)
		}
		seen[k] = true
		if again, err := c.ProcKey(ctx); err != nil || again != k {
			t.Fatalf("second PROCKEY %q %v, want %q", again, err, k)
		}
	}
}

func TestUDPServices(t *testing.T) {
	pool := fakeTLBPool{tuples: []string{"4 10.0.0.1;10346", "6 ::1;10347"}}
	srv := servertest.StartOpts(t, []server.Option{server.WithTLBPool(pool)})
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	key, err := c.ProcKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := srv.Dial(t) // a session that never asked for its key
	if _, err := other.Echo(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	p := newProbe(t, srv.UDPAddr)
	cases := []struct {
		name string
		pkt  []byte
		want string // "" = no reply
	}{
		{"hostcheck", []byte{0}, "\x01"},
		{"hostcheck with trailing bytes", []byte("\x00whatever"), "\x01"},
		{"procheck valid key", []byte("\x01" + key), "\x01"},
		{"procheck key with NUL", []byte("\x01" + key + "\x00junk"), "\x01"},
		{"procheck truncated key", []byte("\x01" + key[:len(key)-2]), "\x00"},
		{"procheck key without slash", []byte("\x01" + key[1:]), "\x00"},
		{"procheck unknown key", []byte("\x01/123456"), "\x00"},
		{"procheck empty key", []byte{1}, "\x00"},
		{"procheck oversize datagram", append([]byte{1}, bytes.Repeat([]byte("9"), 1000)...), "\x00"},
		{"sockcheck valid key", []byte("\x02" + key), "\x010\x00"},
		{"sockcheck unknown key", []byte("\x02/1"), "\x00"},
		{"sockcheck empty key", []byte{2}, "\x00"},
		{"udp_tlb", []byte{3}, "\x01 4 10.0.0.1;10346"},
		{"udp_tlb next", []byte{3}, "\x01 6 ::1;10347"},
		{"udp_tlb wraps", []byte{3, 'x'}, "\x01 4 10.0.0.1;10346"},
		{"empty datagram", []byte{}, ""},
		{"unknown type", []byte{4}, ""},
		{"unknown type with key", []byte("\x7f" + key), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			if tc.want == "" {
				p.noReply(tc.pkt)
				return
			}
			if got := p.ask(tc.pkt); string(got) != tc.want {
				t.Fatalf("reply %q, want %q", got, tc.want)
			}
		})
	}
	// Another source has its own rotation, from the first tuple.
	if got := newProbe(t, srv.UDPAddr).ask([]byte{3}); string(got) != "\x01 4 10.0.0.1;10346" {
		t.Fatalf("second source: %q", got)
	}
}

func TestUDPTLBEmptyAndNoPool(t *testing.T) {
	for name, opts := range map[string][]server.Option{
		"empty pool": {server.WithTLBPool(fakeTLBPool{})},
		"no pool":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			srv := servertest.StartOpts(t, opts)
			if got := newProbe(t, srv.UDPAddr).ask([]byte{3}); string(got) != "\x00" {
				t.Fatalf("reply %q", got)
			}
		})
	}
}

func TestProcCheckFollowsSessionLife(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	key, err := c.ProcKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := newProbe(t, srv.UDPAddr)
	for _, typ := range []byte{1, 2} {
		if got := p.ask(append([]byte{typ}, key...)); got[0] != 1 {
			t.Fatalf("type %d while alive: %q", typ, got)
		}
	}
	c.Close()
	// The session ends asynchronously after END; wait for it to go.
	for srv.Srv.ActiveSessions() != 0 {
		if ctx.Err() != nil {
			t.Fatal("session did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, typ := range []byte{1, 2} {
		if got := p.ask(append([]byte{typ}, key...)); string(got) != "\x00" {
			t.Fatalf("type %d after the session ended: %q", typ, got)
		}
	}
}

// sendOOB sends one urgent byte on nc.
func sendOOB(t *testing.T, nc net.Conn, b byte) {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.Sendto(int(fd), []byte{b}, unix.MSG_OOB, nil) })
	if serr != nil {
		t.Fatal(serr)
	}
}

// recvOOB waits (up to 10 s) for an urgent byte on nc and returns it.
func recvOOB(t *testing.T, nc net.Conn) byte {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var b [1]byte
		var n int
		var rerr error
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
			if _, perr := unix.Poll(fds, 100); perr != nil || fds[0].Revents&unix.POLLPRI == 0 {
				rerr = unix.EAGAIN
				return
			}
			n, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_OOB|unix.MSG_DONTWAIT)
		})
		if rerr == nil && n == 1 {
			return b[0]
		}
	}
	t.Fatal("no out-of-band reply")
	return 0
}

func TestOOBKeepaliveAndSockCheck(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	key, err := c.ProcKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nc := c.Conn().NetConn()
	p := newProbe(t, srv.UDPAddr)
	for i, b := range []byte{'!', 0, 0xff, 'a'} {
		sendOOB(t, nc, b)
		if got := recvOOB(t, nc); got != b {
			t.Fatalf("probe %d: echo %#x, want %#x", i, got, b)
		}
		want := fmt.Sprintf("\x01%d\x00", i+1)
		if got := p.ask([]byte("\x02" + key)); string(got) != want {
			t.Fatalf("SOCKCHECK after %d bytes: %q, want %q", i+1, got, want)
		}
		// The in-band stream is untouched by the urgent bytes both ways.
		text := strings.Repeat(string(rune('A'+i)), 100+i)
		if got, err := c.Echo(ctx, text); err != nil || got != text {
			t.Fatalf("echo after OOB: %q %v", got, err)
		}
	}
	// Another session's counter is its own.
	c2 := srv.Dial(t)
	key2, _ := c2.ProcKey(ctx)
	if got := p.ask([]byte("\x02" + key2)); string(got) != "\x010\x00" {
		t.Fatalf("other session's counter %q", got)
	}
}

func TestOOBBeforeHandshake(t *testing.T) {
	srv := servertest.Start(t)
	raw := srv.DialRaw(t)
	nc := raw.NetConn()
	sendOOB(t, nc, 'k')
	if got := recvOOB(t, nc); got != 'k' {
		t.Fatalf("echo %q", got)
	}
	// The handshake still works on the same connection.
	key, err := tfproto.NewSessionKey(nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := tfproto.ClientHandshake(raw, srv.Config.Proto, srv.Config.Hash, &servertest.Key(t).PublicKey, key); err != nil {
		t.Fatal(err)
	}
	if got := servertest.Command(t, raw, "ECHO after oob"); got != "after oob" {
		t.Fatalf("echo %q", got)
	}
}

// Urgent bytes in the middle of commands' frames, while the session reads,
// must not corrupt them, and each must be answered and counted.
func TestOOBInsideFrames(t *testing.T) {
	srv := servertest.Start(t)
	conn := srv.DialHandshake(t)
	key := servertest.Command(t, conn, "PROCKEY")[len("OK "):]
	nc := conn.NetConn()
	p := newProbe(t, srv.UDPAddr)
	const rounds = 30
	for i := range rounds {
		line := fmt.Sprintf("ECHO urgent-split-%d", i)
		var enc []byte
		conn.WithTx(func(tx *tfproto.Cipher) {
			hdr := tfproto.Int32Field(int32(len(line)))
			body := []byte(line)
			tx.Encrypt(hdr, hdr)
			tx.Encrypt(body, body)
			enc = append(hdr, body...)
		})
		cut := 1 + i%(len(enc)-1) // every position, header and body
		if _, err := nc.Write(enc[:cut]); err != nil {
			t.Fatal(err)
		}
		sendOOB(t, nc, byte(i))
		if _, err := nc.Write(enc[cut:]); err != nil {
			t.Fatal(err)
		}
		// The echo comes before the reply: take it first, or the client's
		// own in-band read would skip it and its kernel forget it.
		if got := recvOOB(t, nc); got != byte(i) {
			t.Fatalf("round %d: echo %d", i, got)
		}
		body, err := conn.ReadFrame(0)
		if err != nil || string(body) != line[len("ECHO "):] {
			t.Fatalf("round %d: reply %q %v", i, body, err)
		}
	}
	if got := p.ask([]byte("\x02" + key)); string(got) != fmt.Sprintf("\x01%d\x00", rounds) {
		t.Fatalf("SOCKCHECK %q after %d urgent bytes", got, rounds)
	}
}

func TestClientUDPAndOOB(t *testing.T) {
	srv := servertest.StartOpts(t, []server.Option{server.WithTLBPool(fakeTLBPool{tuples: []string{"6 ::1;10346"}})})
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	key, err := c.ProcKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.HostCheck(ctx, srv.UDPAddr); err != nil {
		t.Fatal(err)
	}
	if alive, err := client.ProcCheck(ctx, srv.UDPAddr, key); err != nil || !alive {
		t.Fatalf("ProcCheck %v %v", alive, err)
	}
	if alive, err := client.ProcCheck(ctx, srv.UDPAddr, key+"0"); err != nil || alive {
		t.Fatalf("ProcCheck of a wrong key %v %v", alive, err)
	}
	for i := 1; i <= 2; i++ {
		if err := c.OOBPing(ctx); err != nil {
			t.Fatal(err)
		}
		if n, alive, err := client.SockCheck(ctx, srv.UDPAddr, key); err != nil || !alive || n != uint32(i) {
			t.Fatalf("SockCheck %d %v %v, want %d", n, alive, err, i)
		}
	}
	if _, alive, err := client.SockCheck(ctx, srv.UDPAddr, "/nope"); err != nil || alive {
		t.Fatalf("SockCheck of a wrong key %v %v", alive, err)
	}
	if tuple, err := client.UDPTLB(ctx, srv.UDPAddr); err != nil || tuple != "6 ::1;10346" {
		t.Fatalf("UDPTLB %q %v", tuple, err)
	}
	if got, err := c.Echo(ctx, "fine"); err != nil || got != "fine" {
		t.Fatalf("echo after OOB %q %v", got, err)
	}

	empty := servertest.Start(t)
	if _, err := client.UDPTLB(ctx, empty.UDPAddr); !errors.Is(err, client.ErrNoTuple) {
		t.Fatalf("UDPTLB without a pool: %v", err)
	}
	// Nobody listening: an error, not a hang.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	if err := client.HostCheck(ctx, dead); err == nil {
		t.Fatal("HostCheck of a closed port succeeded")
	}
}
