package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
)

func TestTLBVerb(t *testing.T) {
	pool := filepath.Join(t.TempDir(), "tlb")
	if err := os.WriteFile(pool, []byte("4 10.0.0.1;1\n6 ::1;2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, func(c *config.Config) { c.TLB = pool })
	empty := servertest.Start(t)
	tests := []struct {
		srv      *servertest.Server
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{srv, []string{"tlb"}, exitOK, "4 10.0.0.1;1\n", ""},
		{srv, []string{"tlb", "-n", "3"}, exitOK, "4 10.0.0.1;1\n6 ::1;2\n4 10.0.0.1;1\n", ""},
		{srv, []string{"tlb", "-n", "0"}, exitUsage, "", "N ≥ 1"},
		{srv, []string{"tlb", "extra"}, exitUsage, "", "usage"},
		{empty, []string{"tlb"}, exitFailed, "", "FAILED 52 : Failed to retrieve TLB tuple."},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, tt.srv, tt.args...)
		if code != tt.code || out != tt.stdout || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
}
