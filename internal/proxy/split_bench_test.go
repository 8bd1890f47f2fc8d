package proxy_test

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// splitWriteEchoes runs n ECHOs the way the official Python client sends
// them: Nagle on, a frame's 4-byte header and its body in two writes. It
// returns each round trip's duration.
func splitWriteEchoes(tb testing.TB, srv *servertest.Server, addr string, n int) []time.Duration {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetNoDelay(false)
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := tfproto.NewConn(nc)
	key, _ := tfproto.NewSessionKey(nil, 32)
	if err := tfproto.ClientHandshake(c, srv.Config.Proto, srv.Config.Hash, &servertest.Key(tb).PublicKey, key); err != nil {
		tb.Fatal(err)
	}
	body := []byte("ECHO hello there")
	rtts := make([]time.Duration, 0, n)
	for range n {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
		eh, eb := make([]byte, 4), make([]byte, len(body))
		c.WithTx(func(tx *tfproto.Cipher) { tx.Encrypt(eh, hdr[:]); tx.Encrypt(eb, body) })
		start := time.Now()
		nc.Write(eh)
		nc.Write(eb)
		reply, err := c.ReadFrame(0)
		if err != nil || string(reply) != "hello there" {
			tb.Fatalf("reply %q, %v", reply, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	return rtts
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// A client that splits header and body with Nagle on must not wait for the
// proxy's delayed ACK (≈40 ms a command when the proxy does not re-arm
// TCP_QUICKACK). Compared in one run: the proxy's median round trip against
// the direct one, with a wide margin (the fault makes it hundreds of times
// slower).
func TestProxySplitWritesNotDelayed(t *testing.T) {
	srv := servertest.Start(t)
	addr, _ := servertest.StartProxy(t, srv.Direct)
	const n = 15
	direct := median(splitWriteEchoes(t, srv, srv.Direct, n))
	proxied := median(splitWriteEchoes(t, srv, addr, n))
	t.Logf("median round trip: direct %v, through the proxy %v", direct, proxied)
	if proxied > 20*direct+2*time.Millisecond {
		t.Fatalf("through the proxy %v, direct %v: delayed ACKs stall split writes", proxied, direct)
	}
}

// BenchmarkSplitWriteEcho reports the mean round trip of Python-style ECHOs,
// direct and through the proxy.
func BenchmarkSplitWriteEcho(b *testing.B) {
	srv := servertest.Start(b)
	addr, _ := servertest.StartProxy(b, srv.Direct)
	for _, tc := range []struct{ name, addr string }{{"direct", srv.Direct}, {"proxy", addr}} {
		b.Run(tc.name, func(b *testing.B) {
			rtts := splitWriteEchoes(b, srv, tc.addr, b.N)
			var sum time.Duration
			for _, d := range rtts {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(b.N), "µs/rtt")
		})
	}
}

// BenchmarkThroughput streams 1 MiB writes to a sink, directly and through
// the proxy (splice), and reports the rate.
func BenchmarkThroughput(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(io.Discard, c) }()
		}
	}()
	addr, _ := servertest.StartProxy(b, ln.Addr().String())
	chunk := make([]byte, 1<<20)
	for _, tc := range []struct{ name, addr string }{{"direct", ln.Addr().String()}, {"proxy", addr}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(len(chunk)))
			for range b.N {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
