package main

import (
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
	for _, d := range []string{"in", "out"} {
		if err := os.Mkdir(filepath.Join(srv.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"in/job1", "in/job2", "out/job3", "in/other"} {
		if err := os.WriteFile(filepath.Join(srv.Root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runTF(t, srv, "watch", "-token", "job", "-delete", "-count", "3", "-interval", "1e-3", "in", "out")
	if code != exitOK {
		t.Fatalf("code %d stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if strings.Join(lines, ",") != "0 in/job1,0 in/job2,1 out/job3" {
		t.Fatalf("output %q", out)
	}
	// Deleted once the session is gone (END is read after the last DEL).
	for ctx := servertest.Context(t); srv.Srv.ActiveSessions() != 0 && ctx.Err() == nil; {
		time.Sleep(5 * time.Millisecond)
	}
	for _, f := range []string{"in/job1", "in/job2", "out/job3"} {
		if _, err := os.Stat(filepath.Join(srv.Root, f)); err == nil {
			t.Errorf("%s not deleted", f)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "in/other")); err != nil {
		t.Error("in/other deleted")
	}
	if code, _, errs := runTF(t, srv, "watch"); code != exitUsage {
		t.Fatalf("no dir: %d %q", code, errs)
	}
	if code, _, errs := runTF(t, srv, "watch", "missing"); code != exitFailed || !strings.Contains(errs, "FAILED 5") {
		t.Fatalf("missing dir: %d %q", code, errs)
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
