package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// fsImmutableFL is FS_IMMUTABLE_FL of <linux/fs.h>.
const fsImmutableFL = 0x00000010

// setImmutable sets or clears FS_IMMUTABLE_FL on name (root on ext4, xfs,
// btrfs …). It reports false where the flag is not available.
func setImmutable(t *testing.T, name string, on bool) bool {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return false
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags) == nil
}

// TestFSFailures covers the codes that need the kernel to refuse an operation
// even to root: an immutable file or directory inside the tree.
func TestFSFailures(t *testing.T) {
	srv := servertest.Start(t)
	root := srv.Root
	cases := []struct {
		name      string
		immutable []string
		line      string
		want      tfproto.Code
		check     func(t *testing.T)
	}{
		{name: "fupd", immutable: []string{"d/f"}, line: "FUPD d/f", want: tfproto.CodeTimestamp},
		{name: "renam", immutable: []string{"d/f"}, line: "RENAM d/f | d/g2", want: tfproto.CodeRename},
		{name: "del", immutable: []string{"d/f"}, line: "DEL d/f", want: tfproto.CodeAccessDenied},
		{name: "rmdir survivor", immutable: []string{"x/sub/g"}, line: "RMDIR x", want: tfproto.CodeDirStillExists, check: func(t *testing.T) {
			if !exists(root, "x/sub/g") {
				t.Error("x/sub/g is gone")
			}
		}},
		{name: "rmsecdir survivor", immutable: []string{"s.sd/in/x"}, line: "RMSECDIR tok | s.sd", want: tfproto.CodeDirStillExists, check: func(t *testing.T) {
			if !exists(root, "s.sd/in/x") || exists(root, "s.sd/tok") || exists(root, "s.sd/sub") {
				t.Error("RMSECDIR did not remove what it could")
			}
		}},
		{name: "touch in immutable dir", immutable: []string{"e"}, line: "TOUCH e/t", want: tfproto.CodeAccessDenied},
		{name: "mkdir in immutable dir", immutable: []string{"e"}, line: "MKDIR e/n", want: tfproto.CodeAccessDenied},
		{name: "copy into immutable dir", immutable: []string{"e"}, line: "COPY f.txt | e/c", want: tfproto.CodeAccessDenied},
		{name: "cpdir into immutable dir", immutable: []string{"e"}, line: "CPDIR d | e/c", want: tfproto.CodeAccessDenied},
		{name: "xcopy skips immutable dir", immutable: []string{"x/sub"}, line: "XCOPY n f.txt | sub", check: func(t *testing.T) {
			if exists(root, "x/sub/n") || !exists(root, "d/sub/n") {
				t.Error("XCOPY did not skip only the immutable directory")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsFixture(t, srv)
			for _, n := range tc.immutable {
				p := filepath.Join(root, n)
				if !setImmutable(t, p, true) {
					t.Skip("FS_IMMUTABLE_FL not available (needs root on ext4/xfs/btrfs)")
				}
				t.Cleanup(func() { setImmutable(t, p, false) })
			}
			c := srv.Dial(t)
			if got := statusCode(t, c, tc.line); got != tc.want {
				t.Fatalf("%q = %d, want %d", tc.line, got, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}
