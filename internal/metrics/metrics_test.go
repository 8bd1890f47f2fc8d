package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tfd-project/tfd/internal/metrics"
)

// Serve answers /metrics until ctx ends, returns nil, and leaves nothing
// running behind it (its shutdown has finished when it returns).
func TestServeUntilCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := metrics.New()
	m.SessionOpened()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- m.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tfd_sessions_open 1") {
		t.Fatalf("status %d, body without tfd_sessions_open 1:\n%.500s", resp.StatusCode, body)
	}
	tr.CloseIdleConnections()

	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := net.Dial("tcp", addr.String()); err == nil {
		t.Fatal("listener still accepting after Serve returned")
	}
}

// A listen failure is returned.
func TestServeListenError(t *testing.T) {
	if err := metrics.New().Serve(context.Background(), "127.0.0.1:-1", nil); err == nil {
		t.Fatal("no error for a bad address")
	}
}
