package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tfd-project/tfd/client"
)

// Load modes of tf bench: echo (request rate and latency), connect (handshake
// rate) and idle (server memory per open session).

func init() {
	registerBench("echo", benchmark{usage: "echo [-n 64] [-d 5s] [-size 16] [-rate 0]",
		summary: "N sessions send ECHO for D seconds (as fast as possible, or -rate ops/s in all): ops/s, p50/p99/max latency", run: benchEcho})
	registerBench("connect", benchmark{usage: "connect [-c 4] [-d 5s]",
		summary: "C workers open and close sessions for D seconds: handshakes/s", run: benchConnect})
	registerBench("idle", benchmark{usage: "idle [-n 1000] [-pid PID] [-c 8]",
		summary: "open N idle sessions; with -pid, the server's RSS growth per session", run: benchIdle})
}

// parseBenchFlags parses a mode's flags; extra arguments are a usage error.
func parseBenchFlags(fs *flag.FlagSet, e *env, args []string) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// dialAll opens n sessions with c concurrent dialers.
func dialAll(ctx context.Context, e *env, n, c int) ([]*client.Client, error) {
	out := make([]*client.Client, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, c)
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cl, err := e.dial(ctx)
				if err != nil {
					errs[w] = fmt.Errorf("session %d: %w", i, err)
					return
				}
				out[i] = cl
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(out)
		return nil, err
	}
	return out, nil
}

func closeAll(cs []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
	}
	wg.Wait()
}

func benchEcho(ctx context.Context, e *env, args []string) ([]figure, error) {
	fs := flag.NewFlagSet("bench echo", flag.ContinueOnError)
	n := fs.Int("n", 64, "concurrent sessions")
	d := fs.Duration("d", 5*time.Second, "duration")
	size := fs.Int("size", 16, "ECHO payload bytes")
	rate := fs.Float64("rate", 0, "total ECHO requests per second over all sessions, evenly paced (0 = each session as fast as it can: a closed loop)")
	if err := parseBenchFlags(fs, e, args); err != nil {
		return nil, err
	}
	if *n < 1 || *size < 0 || *rate < 0 {
		return nil, usageError("echo needs -n ≥ 1, -size ≥ 0 and -rate ≥ 0")
	}
	// With -rate, session i sends at start + i·gap/n + k·gap and latency is
	// measured from that scheduled time, so a late send counts as latency.
	var gap time.Duration
	if *rate > 0 {
		gap = time.Duration(float64(*n) / *rate * float64(time.Second))
	}
	clients, err := dialAll(ctx, e, *n, min(*n, 8))
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	payload := strings.Repeat("x", *size)
	lat := make([][]time.Duration, *n)
	errs := make([]error, *n)
	rctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			next := start.Add(gap * time.Duration(i) / time.Duration(*n))
			for rctx.Err() == nil {
				t0 := time.Now()
				if gap > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-rctx.Done():
						}
						if rctx.Err() != nil {
							break
						}
					}
					t0 = next
					next = next.Add(gap)
				}
				got, err := c.Echo(ctx, payload)
				if err != nil {
					errs[i] = err
					break
				}
				if got != payload {
					errs[i] = fmt.Errorf("echo returned %d bytes, sent %d", len(got), len(payload))
					break
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return []figure{
		{"sessions", float64(*n), "sessions"},
		{"ops", float64(len(all)) / elapsed.Seconds(), "ops/s"},
		{"p50", ms(percentile(all, 50)), "ms"},
		{"p99", ms(percentile(all, 99)), "ms"},
		{"max", ms(percentile(all, 100)), "ms"},
	}, nil
}

func benchConnect(ctx context.Context, e *env, args []string) ([]figure, error) {
	fs := flag.NewFlagSet("bench connect", flag.ContinueOnError)
	c := fs.Int("c", 4, "concurrent workers")
	d := fs.Duration("d", 5*time.Second, "duration")
	if err := parseBenchFlags(fs, e, args); err != nil {
		return nil, err
	}
	if *c < 1 {
		return nil, usageError("connect needs -c ≥ 1")
	}
	rctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	lat := make([][]time.Duration, *c)
	errs := make([]error, *c)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				t0 := time.Now()
				cl, err := e.dial(ctx)
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				cl.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return []figure{
		{"handshakes", float64(len(all)) / elapsed.Seconds(), "handshakes/s"},
		{"p50", ms(percentile(all, 50)), "ms"},
		{"p99", ms(percentile(all, 99)), "ms"},
	}, nil
}

// rssKiB reads VmRSS of a local process from /proc.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func benchIdle(ctx context.Context, e *env, args []string) ([]figure, error) {
	fs := flag.NewFlagSet("bench idle", flag.ContinueOnError)
	n := fs.Int("n", 1000, "sessions to open")
	pid := fs.Int("pid", 0, "server process id (local server) to read RSS from")
	c := fs.Int("c", 8, "concurrent dialers")
	settle := fs.Duration("settle", 2*time.Second, "wait before reading RSS after opening")
	if err := parseBenchFlags(fs, e, args); err != nil {
		return nil, err
	}
	if *n < 1 || *c < 1 {
		return nil, usageError("idle needs -n ≥ 1 and -c ≥ 1")
	}
	var before int64
	if *pid > 0 {
		var err error
		if before, err = rssKiB(*pid); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	clients, err := dialAll(ctx, e, *n, *c)
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	elapsed := time.Since(start)
	// Every session answers once more, so none is still in its handshake.
	for _, cl := range clients {
		if _, err := cl.Echo(ctx, ""); err != nil {
			return nil, err
		}
	}
	figs := []figure{
		{"sessions", float64(*n), "sessions"},
		{"open rate", float64(*n) / elapsed.Seconds(), "sessions/s"},
	}
	if *pid > 0 {
		select {
		case <-time.After(*settle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		after, err := rssKiB(*pid)
		if err != nil {
			return nil, err
		}
		figs = append(figs,
			figure{"rss before", float64(before), "KiB"},
			figure{"rss after", float64(after), "KiB"},
			figure{"rss per session", float64(after-before) / float64(*n), "KiB"})
	}
	return figs, nil
}
