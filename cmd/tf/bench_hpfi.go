package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/tfproto"
)

// Transfer modes of tf bench: put and get move S bytes over one session with
// the High-Performance File Interface and check them with SHA-256. Both also
// time the stream cipher locally on the same data size, so the transfer rate
// can be compared with one direction of the cipher measured in the same run.

func init() {
	registerBench("put", benchmark{usage: "put [-size 64MiB] [-buf 8MiB] [-remote PATH] [-ahead] [-pid PID]",
		summary: "upload S bytes with PUT: MB/s, SHA-256 checked by reading it back", run: benchPut})
	registerBench("get", benchmark{usage: "get [-size 64MiB] [-buf 8MiB] [-remote PATH] [-ahead] [-pid PID]",
		summary: "download S bytes with GET: MB/s, SHA-256 checked", run: benchGet})
}

// parseSize reads "1048576", "64MiB", "1GiB", "512KiB", "10MB".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

type hpfBenchFlags struct {
	size, buf int64
	remote    string
	ahead     bool
	pid       int
}

func parseHPFBench(name string, e *env, args []string) (*hpfBenchFlags, error) {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	size := fs.String("size", "64MiB", "bytes to move (suffixes KiB, MiB, GiB)")
	buf := fs.String("buf", "8MiB", "buffer size to ask the server for")
	remote := fs.String("remote", "", "remote file used, overwritten in place (default /tf-bench-SIZE.bin: PUT does not truncate, so each size has its own file)")
	ahead := fs.Bool("ahead", false, "client: produce the keystream ahead on a goroutine instead of the fused cipher")
	pid := fs.Int("pid", 0, "server process id (local server): also report CPU time per byte, client and server together")
	if err := parseBenchFlags(fs, e, args); err != nil {
		return nil, err
	}
	f := &hpfBenchFlags{remote: *remote, ahead: *ahead, pid: *pid}
	var err error
	if f.size, err = parseSize(*size); err != nil {
		return nil, usageError(err.Error())
	}
	if f.buf, err = parseSize(*buf); err != nil {
		return nil, usageError(err.Error())
	}
	if f.remote == "" {
		f.remote = fmt.Sprintf("/tf-bench-%d.bin", f.size)
	}
	return f, nil
}

func (f *hpfBenchFlags) options() []client.HPFOption {
	o := []client.HPFOption{client.WithBufferSize(f.buf)}
	if f.ahead {
		o = append(o, client.WithKeystreamAhead())
	}
	return o
}

// patternBlock is the repeating content of benchmark files: random, so that
// nothing on the way can compress it.
const patternBlock = 4 << 20

func newPattern() []byte {
	b := make([]byte, patternBlock)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// patternReader yields size bytes of the repeating block.
type patternReader struct {
	block []byte
	off   int64
	size  int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.block[(r.off+int64(n))%int64(len(r.block)):])
	}
	r.off += int64(n)
	return n, nil
}

func patternSHA(block []byte, size int64) []byte {
	h := sha256.New()
	io.Copy(h, &patternReader{block: block, size: size})
	return h.Sum(nil)
}

// cipherRate is one direction of the cipher measured on this machine: by the
// wall clock, and by the CPU time of the thread that ran it (which other
// programs on a busy machine do not inflate as much).
type cipherRate struct{ wall, cpu float64 }

// localCipherRate enciphers size bytes (clamped to 8..256 MiB) in 512 KiB
// calls on one locked thread and returns the rates in MB/s.
func localCipherRate(size int64) cipherRate {
	size = max(min(size, 256<<20), 8<<20)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := tfproto.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	buf := make([]byte, 512*1024)
	cpu0 := threadCPU()
	start := time.Now()
	for done := int64(0); done < size; done += int64(len(buf)) {
		c.Encrypt(buf, buf)
	}
	wall := time.Since(start)
	cpu := threadCPU() - cpu0
	r := cipherRate{wall: float64(size) / 1e6 / wall.Seconds()}
	if cpu > 0 {
		r.cpu = float64(size) / 1e6 / cpu.Seconds()
	}
	return r
}

// threadCPU returns the calling thread's CPU time (RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // 1 = RUSAGE_THREAD
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// asyncHasher hashes what is written to it on another goroutine, so the hash
// does not slow the transfer it checks.
type asyncHasher struct {
	h    hash.Hash
	work chan []byte
	free chan []byte
	done chan struct{}
}

func newAsyncHasher() *asyncHasher {
	a := &asyncHasher{h: sha256.New(), work: make(chan []byte, 4), free: make(chan []byte, 4), done: make(chan struct{})}
	for range 4 {
		a.free <- make([]byte, 1<<20)
	}
	go func() {
		defer close(a.done)
		for b := range a.work {
			a.h.Write(b)
			a.free <- b[:cap(b)]
		}
	}()
	return a
}

func (a *asyncHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		m := copy(b, p)
		a.work <- b[:m]
		p = p[m:]
	}
	return n, nil
}

func (a *asyncHasher) Sum() []byte {
	close(a.work)
	<-a.done
	return a.h.Sum(nil)
}

// cpuClock reads the CPU time (user+system) of this process and, when pid is
// not 0, of that local process too.
func cpuClock(pid int) (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if pid == 0 {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (USER_HZ = 100).
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return d + time.Duration(ut+st)*10*time.Millisecond, nil
}

// transferFigures reports the transfer with the local cipher rate measured
// just before and just after it (their mean), so that a machine whose load
// changes during the run skews both alike. With cpu > 0 (client and server
// CPU time) it adds the CPU cost per byte and the rate that cost allows on a
// 2-core machine with nothing else running.
func transferFigures(size int64, elapsed time.Duration, before cipherRate, cpu time.Duration) []figure {
	after := localCipherRate(size)
	cipher := (before.wall + after.wall) / 2
	rate := float64(size) / 1e6 / elapsed.Seconds()
	figs := []figure{
		{"bytes", float64(size), "B"},
		{"seconds", elapsed.Seconds(), "s"},
		{"rate", rate, "MB/s"},
		{"cipher one direction", cipher, "MB/s"},
		{"rate / cipher", 100 * rate / cipher, "%"},
	}
	if cpu > 0 {
		ns := float64(cpu.Nanoseconds()) / float64(size)
		cipherCPU := (before.cpu + after.cpu) / 2
		figs = append(figs,
			figure{"cpu client+server", ns, "ns/B"},
			figure{"cipher one direction, cpu", cipherCPU, "MB/s"},
			figure{"rate on 2 idle cores", 2e3 / ns, "MB/s"},
			figure{"2 idle cores / cipher", 100 * 2e3 / ns / cipherCPU, "%"})
	}
	return figs
}

// timeTransfer runs f and returns its wall time and, with a pid, the CPU
// time client and server spent.
func timeTransfer(pid int, f func() error) (time.Duration, time.Duration, error) {
	var cpu0 time.Duration
	if pid > 0 {
		var err error
		if cpu0, err = cpuClock(pid); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	err := f()
	elapsed := time.Since(start)
	var cpu time.Duration
	if pid > 0 && err == nil {
		cpu1, cerr := cpuClock(pid)
		if cerr != nil {
			return 0, 0, cerr
		}
		cpu = cpu1 - cpu0
	}
	return elapsed, cpu, err
}

func benchPut(ctx context.Context, e *env, args []string) ([]figure, error) {
	f, err := parseHPFBench("put", e, args)
	if err != nil {
		return nil, err
	}
	block := newPattern()
	want := patternSHA(block, f.size)
	cipher := localCipherRate(f.size)
	var figs []figure
	err = withClient(ctx, e, func(c *client.Client) error {
		var n int64
		elapsed, cpu, err := timeTransfer(f.pid, func() error {
			var err error
			n, err = c.PutFile(ctx, f.remote, &patternReader{block: block, size: f.size}, 0, f.options()...)
			return err
		})
		if err != nil {
			return err
		}
		if n != f.size {
			return fmt.Errorf("put sent %d bytes of %d", n, f.size)
		}
		// Read it back to check it (not timed).
		h := sha256.New()
		got, err := c.GetFile(ctx, f.remote, h, 0, f.options()...)
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		if got != f.size {
			return fmt.Errorf("read back %d bytes of %d (the remote file was longer before)", got, f.size)
		}
		if !bytes.Equal(h.Sum(nil), want) {
			return fmt.Errorf("SHA-256 of the uploaded file differs")
		}
		figs = transferFigures(f.size, elapsed, cipher, cpu)
		return nil
	})
	return figs, err
}

func benchGet(ctx context.Context, e *env, args []string) ([]figure, error) {
	f, err := parseHPFBench("get", e, args)
	if err != nil {
		return nil, err
	}
	block := newPattern()
	want := patternSHA(block, f.size)
	cipher := localCipherRate(f.size)
	var figs []figure
	err = withClient(ctx, e, func(c *client.Client) error {
		// Upload the file first (not timed).
		if _, err := c.PutFile(ctx, f.remote, &patternReader{block: block, size: f.size}, 0, f.options()...); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		h := newAsyncHasher()
		var n int64
		elapsed, cpu, err := timeTransfer(f.pid, func() error {
			var err error
			n, err = c.GetFile(ctx, f.remote, h, 0, f.options()...)
			return err
		})
		sum := h.Sum()
		if err != nil {
			return err
		}
		if n != f.size {
			return fmt.Errorf("get received %d bytes of %d", n, f.size)
		}
		if !bytes.Equal(sum, want) {
			return fmt.Errorf("SHA-256 of the downloaded file differs")
		}
		figs = transferFigures(f.size, elapsed, cipher, cpu)
		return nil
	})
	return figs, err
}
