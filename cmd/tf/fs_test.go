package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

func TestFSVerbs(t *testing.T) {
	srv := servertest.Start(t)
	if err := os.WriteFile(filepath.Join(srv.Root, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "got")
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"mkdir", "d"}, exitOK, "", ""},
		{[]string{"mkdir", "d"}, exitFailed, "", "FAILED 4 : Directory already exist."},
		{[]string{"touch", "d/t"}, exitOK, "", ""},
		{[]string{"cp", "f", "d/c"}, exitOK, "", ""},
		{[]string{"cpdir", "d", "e"}, exitOK, "", ""},
		{[]string{"mv", "e", "e2"}, exitOK, "", ""},
		{[]string{"ls"}, exitOK, "D: d/\nD: e2/\nF: f\n", ""},
		{[]string{"lsr", "d"}, exitOK, "F: c\nF: t\n", ""},
		{[]string{"ls", "nope"}, exitFailed, "", "FAILED 10"},
		{[]string{"stat", "f"}, exitOK, "F 4 ", ""},
		{[]string{"rcvfile", "d/c"}, exitOK, "data", ""},
		{[]string{"rcvfile", "f", local}, exitOK, "", ""},
		{[]string{"rcvfile", "nope"}, exitFailed, "", "FAILED 9"},
		{[]string{"rm", "d/c"}, exitOK, "", ""},
		{[]string{"rmdir", "e2"}, exitOK, "", ""},
		{[]string{"rmdir"}, exitUsage, "", "needs PATH"},
		{[]string{"cp", "f"}, exitUsage, "", "needs FROM TO"},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || !strings.HasPrefix(out, tt.stdout) || (tt.stdout == "" && out != "") || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	if b, err := os.ReadFile(local); err != nil || string(b) != "data" {
		t.Fatalf("get to a local file: %q %v", b, err)
	}
}
