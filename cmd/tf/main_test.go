package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

// runTF runs tf against srv and returns exit code, stdout and stderr.
func runTF(t *testing.T, srv *servertest.Server, args ...string) (int, string, string) {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(pub, srv.PublicKeyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	full := append([]string{"--addr", srv.Addr, "--pubkey", pub}, args...)
	code := run(context.Background(), full, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVerbs(t *testing.T) {
	srv := servertest.Start(t)
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"echo", "hello", "world"}, exitOK, "hello world\n", ""},
		{[]string{"raw", "ECHO", "x"}, exitOK, "x\n", ""},
		{[]string{"raw", "DTOF", "0"}, exitOK, "OK 1970-01-01 00:00:00\n", ""},
		{[]string{"raw", "DTOF"}, exitFailed, "", "FAILED 16 : Missing parameter from command."},
		{[]string{"raw", "NOSUCH"}, exitUnknown, "", "UNKNOWN"},
		{[]string{"raw"}, exitUsage, "", "raw needs a command"},
		{[]string{"nosuchverb"}, exitUsage, "", "unknown verb"},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	code, out, _ := runTF(t, srv, "date")
	if code != 0 || len(out) != len("2006-01-02 15:04:05\n") {
		t.Errorf("date: %d %q", code, out)
	}
	code, _, errs := runTF(t, srv, "--pubkey", "/nonexistent", "date")
	if code != exitError || !strings.Contains(errs, "public key") {
		t.Errorf("missing key: %d %q", code, errs)
	}
}
