package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/servertest"
)

func TestWatchVerb(t *testing.T) {
	srv := servertest.Start(t)
	if err := os.Mkdir(filepath.Join(srv.Root, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"in/job1", "in/job2", "in/other"} {
		if err := os.WriteFile(filepath.Join(srv.Root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runTF(t, srv, "watch", "--delete", "--count", "2", "--interval", "1e-3", "in", "job")
	if code != exitOK {
		t.Fatalf("code %d stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if strings.Join(lines, ",") != "in/job1,in/job2" {
		t.Fatalf("output %q", out)
	}
	// Deleted once the session is gone (END is read after the last DEL).
	for ctx := servertest.Context(t); srv.Srv.ActiveSessions() != 0 && ctx.Err() == nil; {
		time.Sleep(5 * time.Millisecond)
	}
	for _, f := range []string{"in/job1", "in/job2"} {
		if _, err := os.Stat(filepath.Join(srv.Root, f)); err == nil {
			t.Errorf("%s not deleted", f)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "in/other")); err != nil {
		t.Error("in/other deleted")
	}
	// Without --delete the file stays, and OK means it is not reported again:
	// with two files and --count 2, both are printed once.
	os.WriteFile(filepath.Join(srv.Root, "in/job3"), nil, 0o644)
	code, out, errs = runTF(t, srv, "watch", "--count", "2", "--interval", "1e-3", "in")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if code != exitOK || strings.Join(lines, ",") != "in/job3,in/other" {
		t.Fatalf("watch without --delete: %d %q %q", code, out, errs)
	}
	for _, f := range []string{"in/job3", "in/other"} {
		if _, err := os.Stat(filepath.Join(srv.Root, f)); err != nil {
			t.Errorf("%s deleted without --delete", f)
		}
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"watch"}, exitUsage, "watch needs DIR"},
		{[]string{"watch", "a", "b", "c"}, exitUsage, "watch needs DIR"},
		{[]string{"watch", "in", "toolongtoken"}, exitUsage, "at most 7 bytes"},
		{[]string{"watch", "in", "a/b"}, exitUsage, "at most 7 bytes"},
		{[]string{"watch", "--count", "-1", "in"}, exitUsage, "--count"},
		{[]string{"watch", "--bogus", "in"}, exitUsage, "flag provided but not defined"},
		{[]string{"watch", "missing"}, exitFailed, "FAILED 5 "},
	} {
		code, _, errs := runTF(t, srv, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.stderr) {
			t.Errorf("%v: %d %q", tc.args, code, errs)
		}
	}
}

func TestCheckVerb(t *testing.T) {
	srv := servertest.Start(t)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"check", "host"}, exitOK, "reachable\n"},
		{[]string{"check", "proc", "/nosuchkey"}, exitOK, "gone\n"},
		{[]string{"check", "sock", "/nosuchkey"}, exitOK, "gone\n"},
		{[]string{"check", "tlb"}, exitError, ""},
		{[]string{"check", "proc"}, exitUsage, ""},
		{[]string{"check"}, exitUsage, ""},
		{[]string{"check", "bogus"}, exitUsage, ""},
	} {
		code, out, errs := runTF(t, srv, tc.args...)
		if code != tc.code || (tc.out != "" && out != tc.out) {
			t.Errorf("%v: code %d out %q err %q", tc.args, code, out, errs)
		}
	}
	code, out, errs := runTF(t, srv, "check", "oob")
	if code != exitOK || !strings.Contains(out, "alive true, SOCKCHECK counter 1") {
		t.Fatalf("oob: %d %q %q", code, out, errs)
	}
}

// TestWatchInterrupted: an interrupt is the normal end of a watch (exit 0).
// The interrupt comes when the first file is printed.
func TestWatchInterrupted(t *testing.T) {
	srv := servertest.Start(t)
	os.Mkdir(filepath.Join(srv.Root, "in"), 0o755)
	os.WriteFile(filepath.Join(srv.Root, "in", "x"), nil, 0o644)
	pub := filepath.Join(t.TempDir(), "public.pem")
	os.WriteFile(pub, srv.PublicKeyPEM, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelWriter{cancel: cancel}
	var errb bytes.Buffer
	code := runEnv(ctx, []string{"--addr", srv.Addr, "--pubkey", pub, "watch", "--interval", "1e-3", "in"}, out, &errb,
		func(string) (string, bool) { return "", false }, nil)
	if code != exitOK || out.String() != "in/x\n" {
		t.Fatalf("interrupted watch: %d %q %q", code, out.String(), errb.String())
	}
}

// cancelWriter cancels a context at its first write.
type cancelWriter struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(b []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(b)
}
