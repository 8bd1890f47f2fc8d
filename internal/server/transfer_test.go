package server_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// failCode returns the FAILED code carried by err, or -1.
func failCode(err error) tfproto.Code {
	var fe *tfproto.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return -1
}

// seedTree fills root with the fixtures the transfer tests share: files, a
// directory, a FIFO and symlinks pointing in and out of the jail.
func seedTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(filepath.Dir(root), "outside.txt")
	must(os.WriteFile(outside, []byte("secret outside the jail"), 0o644))
	must(os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello world"), 0o644))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o644))
	must(os.Mkdir(filepath.Join(root, "d"), 0o755))
	must(os.WriteFile(filepath.Join(root, "d", "in dir.txt"), []byte("x"), 0o644))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	must(os.Symlink("hello.txt", filepath.Join(root, "link-in")))
	must(os.Symlink(outside, filepath.Join(root, "link-out")))
	must(os.Symlink("/", filepath.Join(root, "rootlink")))
	must(os.Symlink("..", filepath.Join(root, "uplink")))
}

// jailAttacks are client paths that must never reach outside the root.
var jailAttacks = []string{"..", "../outside.txt", "../../etc/passwd", "d/../../outside.txt", "link-out", "rootlink/etc/passwd", "uplink/outside.txt", "a\x00b", strings.Repeat("n", 5000)}

func TestSHA256(t *testing.T) {
	srv := servertest.Start(t)
	seedTree(t, srv.Root)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	tests := []struct {
		path string
		want []byte // content whose digest is expected
		code tfproto.Code
	}{
		{path: "hello.txt", want: []byte("hello world")},
		{path: "/hello.txt", want: []byte("hello world")},
		{path: "empty", want: []byte{}},
		{path: "d/in dir.txt", want: []byte("x")},
		{path: "link-in", want: []byte("hello world")},
		{path: "", code: tfproto.CodeMissingParam},
		{path: "missing", code: tfproto.CodeSHA256},
		{path: "d", code: tfproto.CodeSHA256},
		{path: "/", code: tfproto.CodeSHA256},
		{path: "fifo", code: tfproto.CodeSHA256},
		{path: "hello.txt/x", code: tfproto.CodeSHA256},
	}
	for _, a := range jailAttacks {
		tests = append(tests, struct {
			path string
			want []byte
			code tfproto.Code
		}{path: a, code: tfproto.CodeAccessDenied})
	}
	for _, tt := range tests {
		sum, err := c.SHA256(ctx, tt.path)
		if tt.code != 0 {
			if got := failCode(err); got != tt.code {
				t.Errorf("SHA256 %.40q: err %v, want FAILED %d", tt.path, err, tt.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("SHA256 %q: %v", tt.path, err)
			continue
		}
		if sum != sha256.Sum256(tt.want) {
			t.Errorf("SHA256 %q: wrong digest", tt.path)
		}
	}
	// Exact reply bytes: "OK 0x" and 64 lower-case hex digits.
	conn := srv.DialHandshake(t)
	got := servertest.Command(t, conn, "SHA256 hello.txt")
	want := sha256.Sum256([]byte("hello world"))
	if got != "OK 0x"+strings.ToLower(hexString(want[:])) || len(got) != 69 {
		t.Fatalf("reply %q", got)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

func TestFileSize(t *testing.T) {
	srv := servertest.Start(t)
	seedTree(t, srv.Root)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	tests := []struct {
		path string
		size int64
		err  error
	}{
		{path: "hello.txt", size: 11},
		{path: "/hello.txt", size: 11},
		{path: "empty", size: 0},
		{path: "link-in", size: 11},
		{path: "d/in dir.txt", size: 1},
		{path: "missing", err: client.ErrNoSize},
		{path: "hello.txt/x", err: client.ErrNoSize},
		{path: "d", err: client.ErrNotRegular},
		{path: "", err: client.ErrNotRegular},
		{path: "fifo", err: client.ErrNotRegular},
	}
	for _, a := range jailAttacks {
		tests = append(tests, struct {
			path string
			size int64
			err  error
		}{path: a, err: client.ErrNoSize})
	}
	for _, tt := range tests {
		got, err := c.FileSize(ctx, tt.path)
		if !errors.Is(err, tt.err) || (tt.err == nil && got != tt.size) {
			t.Errorf("FSIZE %.40q = %d, %v; want %d, %v", tt.path, got, err, tt.size, tt.err)
		}
	}
}

func TestFileSizes(t *testing.T) {
	srv := servertest.Start(t)
	seedTree(t, srv.Root)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	lines := []string{"hello.txt", "missing", "d", "", "link-out", "..", "d/in dir.txt", "hello.txt\r", strings.Repeat("a", 2048), "/empty"}
	want := []int64{11, -1, -2, -2, -1, -1, 1, -1, -1, 0}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(srv.Root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("list", strings.Join(lines, "\n")+"\n")
	write("list-unterminated", strings.Join(lines, "\n"))
	write("list-empty", "")
	for _, name := range []string{"list", "/list-unterminated"} {
		got, err := c.FileSizes(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got, want) {
			t.Errorf("FSIZELS %s = %v, want %v", name, got, want)
		}
	}
	// Lists that cannot be read answer only -3.
	for _, name := range append([]string{"list-empty", "missing", "d", "", "fifo"}, jailAttacks...) {
		got, err := c.FileSizes(ctx, name)
		if err != nil || len(got) != 0 {
			t.Errorf("FSIZELS %.40q = %v, %v; want an empty result", name, got, err)
		}
	}
	// A long list is answered in several writes, still in order.
	var big bytes.Buffer
	var bigWant []int64
	for i := range 3000 {
		if i%2 == 0 {
			big.WriteString("hello.txt\n")
			bigWant = append(bigWant, 11)
		} else {
			big.WriteString("nope\n")
			bigWant = append(bigWant, -1)
		}
	}
	write("biglist", big.String())
	got, err := c.FileSizes(ctx, "biglist")
	if err != nil || !equalInts(got, bigWant) {
		t.Fatalf("FSIZELS biglist: %d entries, %v", len(got), err)
	}
	// The session is still in step.
	if s, err := c.Echo(ctx, "still here"); err != nil || s != "still here" {
		t.Fatalf("echo after FSIZELS: %q %v", s, err)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
