package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

func TestTransferVerbs(t *testing.T) {
	srv := servertest.Start(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.txt")
	if err := os.WriteFile(local, []byte("hello tf"), 0o644); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.txt")
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"sndfile", local, "a.txt"}, exitOK, "", ""},
		{[]string{"sndfile", local, "a.txt"}, exitFailed, "", "FAILED 12"},
		{[]string{"sndfile", "-f", local, "a.txt"}, exitOK, "", ""},
		{[]string{"sup", local, "b.txt"}, exitOK, "", ""},
		{[]string{"sup", local, "../x"}, exitError, "", "failed transfer"},
		{[]string{"sdown", "a.txt"}, exitOK, "hello tf", ""},
		{[]string{"sdown", "b.txt", back}, exitOK, "", ""},
		{[]string{"sdown", "missing", filepath.Join(dir, "missing")}, exitError, "", "failed transfer"},
		{[]string{"sha256", "a.txt"}, exitOK, "66b95d7650e9337d57424e8453530ca1fd1e424b3ab476b7da0736faa011237c\n", ""},
		{[]string{"sha256", "missing"}, exitFailed, "", "FAILED 45"},
		{[]string{"fsize", "b.txt"}, exitOK, "8\n", ""},
		{[]string{"fsize", "missing"}, exitError, "", "FSIZE"},
		{[]string{"sndfile", local}, exitUsage, "", "needs"},
		{[]string{"sup"}, exitUsage, "", "needs"},
		{[]string{"sdown"}, exitUsage, "", "needs"},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != "hello tf" {
		t.Fatalf("back.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a failed sdown left a local file")
	}
}
