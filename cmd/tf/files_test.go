package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

// TestFileVerbs runs the file verbs in order against one server: each row's
// exit code, exact stdout (when given) and a piece of stderr.
func TestFileVerbs(t *testing.T) {
	srv := servertest.Start(t)
	if err := os.WriteFile(filepath.Join(srv.Root, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "got")
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"mkdir", "docs"}, exitOK, "", ""},
		{[]string{"mkdir", "docs"}, exitFailed, "", "FAILED 4 "},
		{[]string{"mkdir", "-p", "docs/a/b", "docs"}, exitOK, "", ""},
		{[]string{"mkdir", "-p", "hello.txt/x"}, exitFailed, "", "FAILED 4 "},
		{[]string{"mkdir"}, exitUsage, "", "mkdir needs"},
		{[]string{"cp", "hello.txt", "docs/hello.txt"}, exitOK, "", ""},
		{[]string{"cp", "hello.txt", "docs/hello.txt"}, exitFailed, "", "FAILED 12 "},
		{[]string{"cp", "missing", "x"}, exitFailed, "", "FAILED 17 "},
		{[]string{"cp", "-r", "docs", "docs2"}, exitOK, "", ""},
		{[]string{"cp", "-r", "hello.txt", "docs3"}, exitFailed, "", "FAILED 20 "},
		{[]string{"cp", "a"}, exitUsage, "", "cp needs"},
		{[]string{"ls"}, exitOK, "docs/\ndocs2/\nhello.txt\n", ""},
		{[]string{"ls", "docs"}, exitOK, "a/\nhello.txt\n", ""},
		{[]string{"ls", "-R", "docs"}, exitOK, "a/\na/b/\nhello.txt\n", ""},
		{[]string{"ls", "missing"}, exitFailed, "", "FAILED 10 "},
		{[]string{"ls", "a", "b"}, exitUsage, "", "at most one"},
		{[]string{"ls", "-x"}, exitUsage, "", "flag provided but not defined"},
		{[]string{"cat", "hello.txt", "docs/hello.txt"}, exitOK, "hello\nhello\n", ""},
		{[]string{"cat", "missing"}, exitFailed, "", "FAILED 9 "},
		{[]string{"cat", "docs"}, exitFailed, "", "FAILED 8 "},
		{[]string{"rcvfile", "hello.txt"}, exitOK, "hello\n", ""},
		{[]string{"rcvfile", "docs/hello.txt", local}, exitOK, "", ""},
		{[]string{"rcvfile", "missing", filepath.Join(t.TempDir(), "m")}, exitFailed, "", "FAILED 9 "},
		{[]string{"rcvfile"}, exitUsage, "", "rcvfile needs"},
		{[]string{"cp", "hello.txt", "gone.txt"}, exitOK, "", ""},
		{[]string{"rcvfile", "-d", "gone.txt", "-"}, exitOK, "hello\n", ""},
		{[]string{"cat", "gone.txt"}, exitFailed, "", "FAILED 9 "},
		{[]string{"mv", "docs2", "docs3"}, exitOK, "", ""},
		{[]string{"mv", "missing", "x"}, exitFailed, "", "FAILED 31 "},
		{[]string{"cp", "hello.txt", "moved.txt"}, exitOK, "", ""},
		{[]string{"mv", "moved.txt", "docs3"}, exitOK, "", ""},
		{[]string{"ls", "docs3"}, exitOK, "a/\nhello.txt\nmoved.txt\n", ""},
		{[]string{"mv", "docs3/moved.txt", "docs3/a/"}, exitOK, "", ""},
		{[]string{"cat", "docs3/a/moved.txt"}, exitOK, "hello\n", ""},
		{[]string{"rm", "docs"}, exitFailed, "", "use rm -r"},
		{[]string{"rm", "missing"}, exitFailed, "", "FAILED 9 "},
		{[]string{"rm", "."}, exitUsage, "", "refusing to remove the data root"},
		{[]string{"rm", "-r", "docs3", "docs/hello.txt"}, exitOK, "", ""},
		{[]string{"rm", "-r", "missing"}, exitFailed, "", "FAILED 9 "},
		{[]string{"ls"}, exitOK, "docs/\nhello.txt\n", ""},
		{[]string{"touch", "docs/new"}, exitOK, "", ""},
		{[]string{"touch", "docs/new"}, exitFailed, "", "FAILED 12 "},
		{[]string{"stat", "missing"}, exitFailed, "", "FAILED 9 "},
		{[]string{"stat"}, exitUsage, "", "stat needs"},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	if b, err := os.ReadFile(local); err != nil || string(b) != "hello\n" {
		t.Errorf("rcvfile to a local file: %q %v", b, err)
	}
	code, out, _ := runTF(t, srv, "stat", "hello.txt")
	st, _ := os.Stat(filepath.Join(srv.Root, "hello.txt"))
	if code != exitOK || !strings.HasPrefix(out, "type: file\nsize: 6\nmodified: "+st.ModTime().UTC().Format(timeLayout)+"\n") {
		t.Errorf("stat: %d %q", code, out)
	}
	code, out, _ = runTF(t, srv, "ls", "-l")
	if code != exitOK || !strings.Contains(out, "F            6 "+st.ModTime().UTC().Format(timeLayout)+" hello.txt\n") || !strings.Contains(out, "D ") {
		t.Errorf("ls -l: %d %q", code, out)
	}
}
