package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

// TestBenchModes runs every bench mode of this file set briefly against a real
// server and checks the figures it prints.
func TestBenchModes(t *testing.T) {
	srv := servertest.Start(t)
	pid := strconv.Itoa(os.Getpid()) // the in-process server's RSS is ours
	tests := []struct {
		args  []string
		names []string
	}{
		{[]string{"bench", "put", "-size", "3MiB", "-buf", "1MiB"}, []string{"bytes", "rate", "cipher one direction", "rate / cipher"}},
		{[]string{"bench", "put", "-size", "3MiB", "-pid", pid}, []string{"rate", "cpu client+server", "rate on 2 idle cores"}},
		{[]string{"bench", "get", "-size", "3MiB", "-buf", "256KiB", "-ahead"}, []string{"bytes", "rate"}},
		{[]string{"bench", "echo", "-n", "4", "-d", "200ms"}, []string{"ops", "p50", "p99", "max"}},
		{[]string{"bench", "echo", "-n", "2", "-d", "200ms", "-rate", "100"}, []string{"ops", "p99"}},
		{[]string{"bench", "connect", "-c", "2", "-d", "300ms"}, []string{"handshakes", "p50"}},
		{[]string{"bench", "idle", "-n", "20", "-pid", pid, "-settle", "1ms"}, []string{"sessions", "rss per session"}},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, append(tt.args, "--json")...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errs)
		}
		var res struct {
			Mode    string
			Figures []figure
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %v in %q", tt.args, err, out)
		}
		got := map[string]float64{}
		for _, f := range res.Figures {
			got[f.Name] = f.Value
		}
		for _, n := range tt.names {
			if _, ok := got[n]; !ok {
				t.Fatalf("%v: no figure %q in %q", tt.args, n, out)
			}
		}
		if v, ok := got["bytes"]; ok && v != 3<<20 {
			t.Fatalf("%v: moved %v bytes", tt.args, v)
		}
		if got["rate"] < 0 || got["ops"] < 0 {
			t.Fatalf("%v: negative figure", tt.args)
		}
	}
	// One line per figure without --json; bad flags are usage errors.
	code, out, _ := runTF(t, srv, "bench", "echo", "-n", "1", "-d", "50ms")
	if code != exitOK || strings.Count(out, "\n") != 5 {
		t.Fatalf("echo text output: %d %q", code, out)
	}
	for _, args := range [][]string{{"bench", "put", "-size", "lots"}, {"bench", "echo", "-n", "0"}, {"bench", "idle", "extra"}} {
		if code, _, _ := runTF(t, srv, args...); code != exitUsage {
			t.Fatalf("%v: exit %d, want usage", args, code)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "64MiB": 64 << 20, "1GiB": 1 << 30, "3KiB": 3072, "10MB": 10e6, "5B": 5} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1TiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
