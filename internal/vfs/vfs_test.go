package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// jailFixture makes a root with symlinks that point out of it, into it, and a
// file outside it.
func jailFixture(t testing.TB) (*FS, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "d", "e")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(outside, "secret"), filepath.Join(root, "d", "f")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"toroot":   "/",
		"tosecret": "../outside/secret",
		"toout":    "../outside",
		"tod":      "d",
		"d/up":     "..",
		"d/up2":    "../..",
		"loop":     "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs, real
}

// inside reports whether the open file f lies inside dir, by the kernel's name
// for its descriptor.
func inside(t testing.TB, f *os.File, dir string) bool {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func TestResolve(t *testing.T) {
	fs, _ := jailFixture(t)
	for _, tc := range []struct {
		in, want string
		access   bool
	}{
		{in: "", want: "."},
		{in: "/", want: "."},
		{in: "d/f", want: "d/f"},
		{in: "/d/f", want: "d/f"},
		{in: "d//e/", want: "d/e"},
		{in: "d/e/..", want: "d"},
		{in: "tod/f", want: "tod/f"},
		{in: "toroot", access: true},
		{in: "tosecret", access: true},
		{in: "loop", want: "loop"},
		{in: "d/up/d", want: "d/up/d"},
		{in: "..", access: true},
		{in: "/..", access: true},
		{in: "../../etc/passwd", access: true},
		{in: "d/../../x", access: true},
		{in: "toroot/etc/passwd", access: true},
		{in: "toout/secret", access: true},
		{in: "d/up2/x", access: true},
		{in: "a\x00b", access: true},
		{in: strings.Repeat("n", 5000), access: true},
		{in: strings.Repeat("n", 256), access: true},
		{in: strings.Repeat("a/", 2100), access: true},
	} {
		got, err := fs.Resolve(tc.in)
		if tc.access {
			if !errors.Is(err, ErrAccess) {
				t.Errorf("Resolve(%.40q) = %q, %v; want ErrAccess", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%.40q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMapError(t *testing.T) {
	if errEscapes() == nil {
		t.Fatal("the os.Root escape error could not be learnt; MapError falls back to the message")
	}
	fs, _ := jailFixture(t)
	for _, name := range []string{"toroot/etc", "tosecret", "toout", "d/up2"} {
		_, err := fs.Root().Stat(name)
		if !IsEscape(err) || !errors.Is(MapError(err), ErrAccess) {
			t.Errorf("Stat(%s): %v is not mapped to ErrAccess", name, err)
		}
	}
	_, err := fs.Root().Stat("missing")
	if IsEscape(err) || errors.Is(MapError(err), ErrAccess) || !errors.Is(MapError(err), os.ErrNotExist) {
		t.Errorf("Stat(missing): %v mapped to %v", err, MapError(err))
	}
	if MapError(nil) != nil || IsEscape(nil) {
		t.Error("nil error mapped")
	}
}

// FuzzResolve checks that nothing Resolve accepts can be opened, followed to
// its end through the os.Root, outside the root.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "/", ".", "..", "d/f", "toroot", "toroot/etc/passwd", "tosecret",
		"toout/secret", "tod/up/d/f", "d/up2", "d/../..", "../root/d", "loop", "d/up/up/x", "/etc/passwd", "a\x00"} {
		f.Add(s)
	}
	fs, dir := jailFixture(f)
	f.Fuzz(func(t *testing.T, p string) {
		name, err := fs.Resolve(p)
		if err != nil {
			return
		}
		if name != "." && !filepath.IsLocal(name) {
			t.Fatalf("Resolve(%q) = %q, not a local name", p, name)
		}
		if fi, err := fs.Root().Stat(name); err == nil && fi.IsDir() {
			sub, err := fs.Root().OpenRoot(name)
			if err == nil {
				d, err := sub.Open(".")
				if err == nil {
					if !inside(t, d, dir) {
						t.Fatalf("Resolve(%q) = %q opened a directory outside the root", p, name)
					}
					d.Close()
				}
				sub.Close()
			}
		}
		file, err := fs.Root().Open(name)
		if err != nil {
			return
		}
		defer file.Close()
		if !inside(t, file, dir) {
			t.Fatalf("Resolve(%q) = %q opened a file outside the root", p, name)
		}
	})
}
