package server_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
)

// Completed transfers are counted with their bytes; failed ones are not.
func TestTransferMetrics(t *testing.T) {
	m := metrics.New()
	srv := servertest.StartOpts(t, []server.Option{server.WithMetrics(m)})
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	data := randBytes(1000, 5)
	if _, err := c.SendFile(ctx, "a", bytes.NewReader(data), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendFile(ctx, "a", bytes.NewReader(data), false); err == nil {
		t.Fatal("SNDFILE over an existing file without overwrite succeeded")
	}
	if _, err := c.Upload(ctx, "b", bytes.NewReader(data[:300])); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(ctx, "b", io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nigma(ctx, 16); err != nil {
		t.Fatal(err)
	}
	c.Close()
	srv.Stop()
	scrapeUntil(t, m, []string{
		`tfd_transfer_bytes_total{command="SNDFILE"} 1000`,
		`tfd_transfer_bytes_total{command="SUP"} 300`,
		`tfd_transfer_bytes_total{command="SDOWN"} 300`,
		`tfd_transfer_duration_seconds_count{command="SNDFILE"} 1`,
		`tfd_commands_total{command="SNDFILE",result="12"} 1`,
		`tfd_commands_total{command="NIGMA",result="OK"} 1`,
	})
}
