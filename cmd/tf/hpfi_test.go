package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

func TestPutGetVerbs(t *testing.T) {
	srv := servertest.Start(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(local, []byte("hello, high performance"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runTF(t, srv, "put", "-buf", "4", local, "/a.txt"); code != exitOK {
		t.Fatalf("put: %d %s", code, errs)
	}
	if got, _ := os.ReadFile(filepath.Join(srv.Root, "a.txt")); string(got) != "hello, high performance" {
		t.Fatalf("stored %q", got)
	}
	// In place at an offset, with PUTCAN.
	os.WriteFile(local, []byte("HIGH"), 0o644)
	if code, _, errs := runTF(t, srv, "put", "-offset", "7", "-can", "1", local, "a.txt"); code != exitOK {
		t.Fatalf("put -can: %d %s", code, errs)
	}
	if code, out, errs := runTF(t, srv, "get", "a.txt"); code != exitOK || out != "hello, HIGH performance" {
		t.Fatalf("get: %d %q %s", code, out, errs)
	}
	if code, out, _ := runTF(t, srv, "get", "-offset", "12", "-can", "2", "-buf", "3", "a.txt", "-"); code != exitOK || out != "performance" {
		t.Fatalf("get -offset -can: %d %q", code, out)
	}
	dst := filepath.Join(dir, "out.txt")
	if code, _, _ := runTF(t, srv, "get", "a.txt", dst); code != exitOK {
		t.Fatal("get to a file failed")
	}
	if got, _ := os.ReadFile(dst); string(got) != "hello, HIGH performance" {
		t.Fatalf("downloaded %q", got)
	}
	// A missing remote file: FAILED 34, exit 1, no local file left behind.
	missing := filepath.Join(dir, "missing.txt")
	if code, _, errs := runTF(t, srv, "get", "nope", missing); code != exitFailed || !strings.Contains(errs, "FAILED 34") {
		t.Fatalf("get missing: %d %s", code, errs)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("failed get left a local file")
	}
	for _, args := range [][]string{{"put", "only-one"}, {"get"}, {"put", "-buf", "x", local, "r"}, {"get", "-offset", "-1", "r"}} {
		if code, _, _ := runTF(t, srv, args...); code != exitUsage {
			t.Fatalf("%v: exit %d, want usage", args, code)
		}
	}
}
