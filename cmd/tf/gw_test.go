package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/servertest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func pubkeyFile(t *testing.T, srv *servertest.Server) string {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(pub, srv.PublicKeyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestGW(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	bobC := srv.Dial(t)
	bob, err := bobC.Gateway(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	in, feed := io.Pipe()
	gwStdin = in
	defer func() { gwStdin = os.Stdin }()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"--addr", srv.Addr, "--pubkey", pubkeyFile(t, srv), "gw", "--sign", "alice"}, &out, &errb)
	}()
	// alice is in once bob can reach her.
	for !strings.Contains(errb.String(), "joined the gateway") {
		select {
		case code := <-done:
			t.Fatalf("tf gw exited %d: %s", code, errb.String())
		default:
		}
		if ctx.Err() != nil {
			t.Fatal("tf gw did not join")
		}
		time.Sleep(time.Millisecond)
	}
	io.WriteString(feed, "bob hello bob\nno-space-line\n\n")
	if m, err := bob.Recv(ctx); err != nil || string(m) != "alice: hello bob" {
		t.Fatalf("bob got %q %v", m, err)
	}
	if err := bob.Send("alice", []byte("hi alice")); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "hi alice\n") {
		if ctx.Err() != nil {
			t.Fatalf("tf gw printed %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	feed.Close() // EOF: leave with -1
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "no destination") {
		t.Errorf("stderr %q", errb.String())
	}
	if st := srv.Srv.GatewayStats(); st.Peers != 1 {
		t.Fatalf("alice still inside: %+v", st)
	}

	code, _, errs := runTF(t, srv, "gw")
	if code != exitUsage || !strings.Contains(errs, "IDENTITY") {
		t.Errorf("gw without identity: %d %q", code, errs)
	}
}

func TestBenchGateway(t *testing.T) {
	srv := servertest.Start(t)
	code, out, errs := runTF(t, srv, "bench", "gateway", "-pairs", "2", "-size", "100", "-duration", "300ms", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res struct {
		Mode    string
		Figures []figure
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fig := map[string]float64{}
	for _, f := range res.Figures {
		fig[f.Name] = f.Value
	}
	if res.Mode != "gateway" || fig["delivered"] == 0 || fig["delivered"] != fig["sent"] || fig["dropped"] != 0 ||
		fig["latency_p50"] <= 0 || fig["latency_p99"] < fig["latency_p50"] || fig["delivered_rate"] <= 0 {
		t.Fatalf("figures %v", fig)
	}
	if st := srv.Srv.GatewayStats(); st.Delivered != uint64(fig["delivered"]) || st.Peers != 0 {
		t.Fatalf("server saw %+v, bench %v", st, fig)
	}
	for _, bad := range [][]string{{"-size", "3"}, {"-pairs", "0"}, {"-window", "-1"}, {"-duration", "0s"}} {
		if code, _, _ := runTF(t, srv, append([]string{"bench", "gateway"}, bad...)...); code != exitUsage {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
}
