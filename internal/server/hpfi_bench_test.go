package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// zeroReader yields n zero bytes (the cipher makes no difference between data
// values; the reader costs one copy, like a file read from the page cache).
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

const benchTransfer = 64 << 20

// hpfCPUTime returns the user+system CPU time this process has used: client and
// server together, kernel loopback work included.
func hpfCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU cost per transferred byte and, with twoCores, the
// rate that cost allows when both cores of a 2-core machine are free: the
// figures that do not depend on what else runs on the machine.
func reportCPU(b *testing.B, cpu time.Duration, bytes int64, twoCores bool) {
	nsPerByte := float64(cpu.Nanoseconds()) / float64(bytes)
	b.ReportMetric(nsPerByte, "cpu-ns/B")
	if twoCores {
		b.ReportMetric(2*1e3/nsPerByte, "MB/s-on-2-idle-cores")
	}
}

// BenchmarkHPFPut uploads 64 MiB per op with PUT over loopback to an
// in-process server (client and server share this process's cores).
func BenchmarkHPFPut(b *testing.B) {
	for _, ahead := range []bool{true, false} {
		b.Run(map[bool]string{true: "ahead", false: "fused"}[ahead], func(b *testing.B) {
			srv := servertest.Start(b)
			c := srv.Dial(b)
			defer server.SetHPFKeystreamAhead(ahead)()
			opts := []client.HPFOption{client.WithBufferSize(8 << 20)}
			if ahead {
				opts = append(opts, client.WithKeystreamAhead())
			}
			b.SetBytes(benchTransfer)
			cpu0, n := hpfCPUTime(), int64(0)
			for b.Loop() {
				if _, err := c.PutFile(b.Context(), "bench", &zeroReader{benchTransfer}, 0, opts...); err != nil {
					b.Fatal(err)
				}
				n += benchTransfer
			}
			reportCPU(b, hpfCPUTime()-cpu0, n, true)
		})
	}
}

// BenchmarkHPFGet downloads 64 MiB per op with GET over loopback.
func BenchmarkHPFGet(b *testing.B) {
	for _, ahead := range []bool{true, false} {
		b.Run(map[bool]string{true: "ahead", false: "fused"}[ahead], func(b *testing.B) {
			srv := servertest.Start(b)
			c := srv.Dial(b)
			defer server.SetHPFKeystreamAhead(ahead)()
			opts := []client.HPFOption{client.WithBufferSize(8 << 20)}
			if ahead {
				opts = append(opts, client.WithKeystreamAhead())
			}
			if _, err := c.PutFile(b.Context(), "bench", &zeroReader{benchTransfer}, 0); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchTransfer)
			cpu0, n := hpfCPUTime(), int64(0)
			for b.Loop() {
				if _, err := c.GetFile(b.Context(), "bench", io.Discard, 0, opts...); err != nil {
					b.Fatal(err)
				}
				n += benchTransfer
			}
			reportCPU(b, hpfCPUTime()-cpu0, n, true)
		})
	}
}

// BenchmarkRSADecrypt measures the server's share of a handshake: one
// RSA-2048 OAEP-SHA1 decryption of a session key.
func BenchmarkRSADecrypt(b *testing.B) {
	key := servertest.Key(b)
	sk := bytes.Repeat([]byte{7}, 32)
	ct, err := tfproto.EncryptSessionKey(&key.PublicKey, sk)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := hpfCPUTime()
	for b.Loop() {
		if _, err := tfproto.DecryptSessionKey(key, ct); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((hpfCPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkEcho64 runs ECHO on 64 sessions at once (closed loop) against an
// in-process server: the cost of a small command round trip.
func BenchmarkEcho64(b *testing.B) {
	srv := servertest.Start(b)
	clients := make([]*client.Client, 64)
	for i := range clients {
		clients[i] = srv.Dial(b)
	}
	var next atomic.Int64
	b.SetParallelism(32) // 2 cores × 32 = 64 goroutines
	cpu0 := hpfCPUTime()
	defer func() {
		b.ReportMetric(float64((hpfCPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[next.Add(1)-1]
		for pb.Next() {
			if _, err := c.Echo(b.Context(), "0123456789abcdef"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHandshake opens and closes sessions one after another against an
// in-process server: compare its server share with BenchmarkRSADecrypt.
func BenchmarkHandshake(b *testing.B) {
	srv := servertest.Start(b)
	opts := srv.Options()
	cpu0 := hpfCPUTime()
	for b.Loop() {
		c, err := client.Dial(b.Context(), srv.Addr, opts)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64((hpfCPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkHPFServerPut measures the server's side of PUT alone, as if the
// client ran on another machine: the client's stream (chunk headers, 512 KiB
// chunks, HPFEND) is enciphered before the timer starts and sent raw, so the
// timed part costs the client only its write system calls.
func BenchmarkHPFServerPut(b *testing.B) {
	srv := servertest.Start(b)
	conn := srv.DialHandshake(b)
	const chunk = 512 * 1024
	stream := make([]byte, 0, benchTransfer+benchTransfer/chunk*8+8)
	b.SetBytes(benchTransfer)
	var cpu, cipherWall, wall time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := conn.WriteFrame(hpfBody("PUT", "bench", 0, chunk, nil)); err != nil {
			b.Fatal(err)
		}
		if reply, err := conn.ReadFrame(0); err != nil || len(reply) != 11 {
			b.Fatalf("PUT reply %q %v", reply, err)
		}
		tx := conn.TxCipher()
		stream = stream[:0]
		zero := make([]byte, chunk)
		c0 := time.Now()
		for off := 0; off < benchTransfer; off += chunk {
			h := len(stream)
			stream = binary.BigEndian.AppendUint64(stream, chunk)
			tx.Encrypt(stream[h:], stream[h:])
			d := len(stream)
			stream = append(stream, zero...)
			tx.Encrypt(stream[d:], stream[d:])
		}
		h := len(stream)
		stream = binary.BigEndian.AppendUint64(stream, 0) // HPFEND
		tx.Encrypt(stream[h:], stream[h:])
		cipherWall += time.Since(c0)
		cpu0, w0 := hpfCPUTime(), time.Now()
		b.StartTimer()
		if err := conn.WriteRaw(stream); err != nil {
			b.Fatal(err)
		}
		if code, err := conn.ReadInt64(); err != nil || code != tfproto.HPFFin {
			b.Fatalf("FIN: %d %v", code, err)
		}
		b.StopTimer()
		cpu += hpfCPUTime() - cpu0
		wall += time.Since(w0)
		if err := conn.WriteInt64(tfproto.HPFFin); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportCPU(b, cpu, int64(b.N)*benchTransfer, false)
	// The client enciphered the same stream just before each timed send, on
	// the same machine under the same load: one cipher direction.
	b.ReportMetric(100*cipherWall.Seconds()/wall.Seconds(), "%-of-cipher")
}

// BenchmarkHPFServerGet measures the server's side of GET alone: the client
// reads the enciphered stream raw, without deciphering it, and drops the
// session afterwards (it cannot answer the FIN handshake out of step).
func BenchmarkHPFServerGet(b *testing.B) {
	srv := servertest.Start(b)
	c := srv.Dial(b)
	if _, err := c.PutFile(b.Context(), "bench", &zeroReader{benchTransfer}, 0); err != nil {
		b.Fatal(err)
	}
	const chunk = 512 * 1024
	total := benchTransfer + benchTransfer/chunk*8 + 8 // chunks, headers, HPFEND
	buf := make([]byte, 1<<20)
	ref := tfproto.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	refBuf := make([]byte, chunk)
	b.SetBytes(benchTransfer)
	var cpu, cipherWall, wall time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// One cipher direction over the same bytes, same conditions.
		c0 := time.Now()
		for off := 0; off < benchTransfer; off += chunk {
			ref.Encrypt(refBuf, refBuf)
		}
		cipherWall += time.Since(c0)
		conn := srv.DialHandshake(b)
		if err := conn.WriteFrame(hpfBody("GET", "bench", 0, chunk, nil)); err != nil {
			b.Fatal(err)
		}
		if reply, err := conn.ReadFrame(0); err != nil || len(reply) != 11 {
			b.Fatalf("GET reply %q %v", reply, err)
		}
		cpu0, w0 := hpfCPUTime(), time.Now()
		b.StartTimer()
		for left := total; left > 0; {
			n := min(left, len(buf))
			if err := conn.ReadRaw(buf[:n]); err != nil {
				b.Fatal(err)
			}
			left -= n
		}
		b.StopTimer()
		cpu += hpfCPUTime() - cpu0
		wall += time.Since(w0)
		conn.NetConn().Close()
		b.StartTimer()
	}
	reportCPU(b, cpu, int64(b.N)*benchTransfer, false)
	b.ReportMetric(100*cipherWall.Seconds()/wall.Seconds(), "%-of-cipher")
}
