package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
)

// TestMetricsAfterScriptedSession scrapes /metrics after a scripted session and
// checks the counters it must have moved.
func TestMetricsAfterScriptedSession(t *testing.T) {
	m := metrics.New()
	srv := servertest.StartOpts(t, []server.Option{server.WithMetrics(m)})
	c := srv.DialHandshake(t)
	for _, line := range []string{"ECHO hi", "ECHO again", "DTOF", "NOSUCH", "DATE"} {
		servertest.Command(t, c, line)
	}
	c.WriteFrameString("END")
	servertest.ExpectClosed(t, c)
	opts := srv.Options()
	opts.Hash = "wrong"
	if _, err := client.Dial(servertest.Context(t), srv.Addr, opts); err == nil {
		t.Fatal("wrong hash accepted")
	}
	srv.Stop() // every session has ended and been counted

	text := scrapeUntil(t, m, []string{
		`tfd_commands_total{command="ECHO",result="RAW"} 2`,
		`tfd_commands_total{command="DTOF",result="16"} 1`,
		`tfd_commands_total{command="UNKNOWN",result="UNKNOWN"} 1`,
		`tfd_commands_total{command="DATE",result="OK"} 1`,
		`tfd_handshake_failures_total{reason="hash"} 1`,
		`tfd_sessions_total 2`,
		`tfd_sessions_open 0`,
	})
	if !strings.Contains(text, `tfd_session_bytes_total{direction="in"}`) {
		t.Error("no byte counters")
	}
}

// scrapeUntil scrapes m's /metrics until every wanted line is present and
// returns that scrape, failing the test with the missing lines after ten
// seconds. Counters that move after a reply has left (the command counter) need
// the wait; nothing is timed.
func scrapeUntil(t *testing.T, m *metrics.Metrics, wants []string) string {
	t.Helper()
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, want := range wants {
			if !strings.Contains(string(body), want+"\n") {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
