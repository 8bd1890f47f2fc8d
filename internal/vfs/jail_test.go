package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestJail(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "j", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "secret"), []byte("s"), 0o644))
	must(os.WriteFile(filepath.Join(root, "j", JailKeyName), []byte("k\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "j", "in"), []byte("i"), 0o644))
	must(os.Symlink("../secret", filepath.Join(root, "j", "up")))
	must(os.Symlink(filepath.Join(root, "secret"), filepath.Join(root, "j", "abs")))
	must(os.Symlink("../..", filepath.Join(root, "j", "sub", "upup")))
	must(os.Symlink("../../..", filepath.Join(root, "escape")))

	f, err := Open(root)
	must(err)
	defer f.Close()
	if f.Hidden(JailKeyName) {
		t.Fatal("the key is hidden outside a jail")
	}
	if _, err := f.Jail("escape"); !errors.Is(err, ErrAccess) {
		t.Fatalf("Jail through an escaping symlink: %v", err)
	}
	if _, err := f.Jail("secret"); err == nil {
		t.Fatal("Jail on a file succeeded")
	}
	j, err := f.Jail("j")
	must(err)
	defer j.Close()
	if j.Dir() != filepath.Join(f.Dir(), "j") {
		t.Errorf("Dir = %q", j.Dir())
	}
	for _, name := range []string{"jail.key", "JAIL.KEY", "Jail.Key"} {
		if !j.Hidden(name) {
			t.Errorf("%q not hidden in the jail", name)
		}
	}
	for _, name := range []string{"sub/jail.key", "jail.key2", "in", "."} {
		if j.Hidden(name) {
			t.Errorf("%q hidden", name)
		}
	}
	if b, err := j.Root().ReadFile("in"); err != nil || string(b) != "i" {
		t.Fatalf("read inside the jail: %q %v", b, err)
	}
	for _, name := range []string{"up", "abs", "sub/upup/secret", "../secret", "sub/../../secret"} {
		if _, err := j.Root().ReadFile(name); err == nil {
			t.Errorf("read %q left the jail", name)
		}
	}
	// The jail survives closing the outer root.
	f.Close()
	if _, err := j.Root().Stat("in"); err != nil {
		t.Fatalf("jail after closing its parent: %v", err)
	}
}
