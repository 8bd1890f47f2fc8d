package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// oldTime is the mtime the fixture gives f.txt, so FUPD's effect shows.
var oldTime = time.Unix(1_000_000_000, 0)

// fsFixture fills the server's root with a known tree (and, next to the root,
// things a jailed client must never reach):
//
//	d/ (0750)    f "hello", sub/g "g", in.sd/y
//	e/           (empty)
//	f.txt        "data", mtime oldTime
//	ld/          lk, inner, sub/lk, sub/g, free/h  (ld and ld/sub locked for LOCK lk)
//	s.sd/        tok, sub/g, in/x
//	x/sub/g, xsub/
//	p            a FIFO
//	in -> d, evil -> /, evilf -> ../secret, evild -> ../outside, dangling -> nope
//	.tfd-staging-zz  a staging file
//	../secret, ../outside/o
func fsFixture(t testing.TB, srv *servertest.Server) {
	t.Helper()
	root := srv.Root
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Dir(root)
	os.MkdirAll(filepath.Join(base, "outside"), 0o755)
	files := map[string]string{
		"d/f": "hello", "d/sub/g": "g", "d/in.sd/y": "y", "f.txt": "data",
		"ld/lk": "", "ld/inner": "i", "ld/free/h": "h", "ld/sub/lk": "", "ld/sub/g": "g",
		"s.sd/tok": "", "s.sd/sub/g": "g", "s.sd/in/x": "x", "x/sub/g": "g",
		".tfd-staging-zz": "partial",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"e", "xsub"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "d"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, "f.txt"), oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"in": "d", "evil": "/", "evilf": "../secret", "evild": "../outside", "dangling": "nope"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"secret": "secret", "outside/o": "o"} {
		if err := os.WriteFile(filepath.Join(base, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// outsideIntact fails the test if anything next to the root changed.
func outsideIntact(t testing.TB, srv *servertest.Server) {
	t.Helper()
	base := filepath.Dir(srv.Root)
	for name, data := range map[string]string{"secret": "secret", "outside/o": "o"} {
		b, err := os.ReadFile(filepath.Join(base, name))
		if err != nil || string(b) != data {
			t.Fatalf("outside file %s changed: %q %v", name, b, err)
		}
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 3 { // root, secret, outside
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("entries appeared next to the root: %v", names)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("/etc/passwd: %v", err)
	}
}

// codeOf returns 0 for nil and the FAILED code of a *tfproto.Error; any other
// error fails the test.
func codeOf(t testing.TB, err error) tfproto.Code {
	t.Helper()
	if err == nil {
		return 0
	}
	var fe *tfproto.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a FAILED reply: %v", err)
	}
	return fe.Code
}

// statusCode sends line with c.Do and returns 0 for OK, the code for FAILED,
// and fails the test for anything else.
func statusCode(t testing.TB, c *client.Client, line string) tfproto.Code {
	t.Helper()
	st, err := c.Do(servertest.Context(t), line)
	if err != nil {
		t.Fatalf("%.60q: %v", line, err)
	}
	switch st.Kind {
	case tfproto.KindOK:
		return 0
	case tfproto.KindFailed:
		if st.Code.Line() != string(st.Raw) {
			t.Fatalf("%.60q: reply %q is not the exact line %q", line, st.Raw, st.Code.Line())
		}
		return st.Code
	}
	t.Fatalf("%.60q: unexpected reply %q", line, st.Raw)
	return 0
}

func exists(root, name string) bool {
	_, err := os.Lstat(filepath.Join(root, name))
	return err == nil
}

func readRootFile(t testing.TB, root, name string) string {
	t.Helper()
	return string(readFile(t, filepath.Join(root, name)))
}
