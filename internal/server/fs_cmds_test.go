package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// TestFSCommandCodes runs every file command against a fresh fixture for each
// case and checks the status code and the resulting tree.
func TestFSCommandCodes(t *testing.T) {
	srv := servertest.Start(t)
	root := srv.Root
	gone := func(names ...string) func(t *testing.T) {
		return func(t *testing.T) {
			for _, n := range names {
				if exists(root, n) {
					t.Errorf("%s still exists", n)
				}
			}
		}
	}
	there := func(names ...string) func(t *testing.T) {
		return func(t *testing.T) {
			for _, n := range names {
				if !exists(root, n) {
					t.Errorf("%s is missing", n)
				}
			}
		}
	}
	both := func(fs ...func(t *testing.T)) func(t *testing.T) {
		return func(t *testing.T) {
			for _, f := range fs {
				f(t)
			}
		}
	}
	content := func(name, want string) func(t *testing.T) {
		return func(t *testing.T) {
			if got := readRootFile(t, root, name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	}
	unchanged := there("d/f", "d/sub/g", "f.txt", "ld/inner", "s.sd/tok", "e")

	cases := []struct {
		name  string
		lock  bool   // LOCK lk first
		pre   string // a command that must answer OK first
		line  string
		want  tfproto.Code
		check func(t *testing.T)
	}{
		// MKDIR §5.3
		{name: "mkdir", line: "MKDIR new", check: func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(root, "new"))
			if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o700 != 0o700 {
				t.Errorf("new: %v %v", fi, err)
			}
		}},
		{name: "mkdir spaced", line: "MKDIR a b", check: there("a b")},
		{name: "mkdir leading slash", line: "MKDIR /d/new", check: there("d/new")},
		{name: "mkdir exists", line: "MKDIR d", want: 4},
		{name: "mkdir file exists", line: "MKDIR f.txt", want: 4},
		{name: "mkdir root", line: "MKDIR ", want: 4},
		{name: "mkdir no space", line: "MKDIR", want: 4},
		{name: "mkdir missing parent", line: "MKDIR nope/x", want: 1},
		{name: "mkdir under file", line: "MKDIR f.txt/x", want: 1},
		{name: "mkdir locked", lock: true, line: "MKDIR ld/new", want: 30, check: gone("ld/new")},
		{name: "mkdir lock not inherited", lock: true, line: "MKDIR ld/sub/deeper/x", want: 1},
		{name: "mkdir staging name", line: "MKDIR .tfd-staging-x", want: 1},
		// DEL §5.4
		{name: "del", line: "DEL f.txt", check: gone("f.txt")},
		{name: "del missing", line: "DEL nope", want: 9},
		{name: "del under file", line: "DEL f.txt/x", want: 9, check: there("f.txt")},
		{name: "del dir", line: "DEL d", want: 8, check: there("d/f")},
		{name: "del root", line: "DEL ", want: 8},
		{name: "del fifo", line: "DEL p", check: gone("p")},
		{name: "del symlink removes the link", line: "DEL in", check: both(gone("in"), there("d/f"))},
		{name: "del dangling symlink", line: "DEL dangling", check: gone("dangling")},
		{name: "del locked", lock: true, line: "DEL ld/inner", want: 30, check: there("ld/inner")},
		{name: "del lock file itself", lock: true, line: "DEL ld/lk", check: gone("ld/lk")},
		{name: "del without lock", line: "DEL ld/inner", check: gone("ld/inner")},
		// RMDIR §5.5, §P row 17
		{name: "rmdir", line: "RMDIR e", check: gone("e")},
		{name: "rmdir tree", line: "RMDIR x", check: gone("x")},
		{name: "rmdir keeps secure", line: "RMDIR d", want: 15, check: both(gone("d/f", "d/sub"), there("d/in.sd/y"))},
		{name: "rmdir inside secure", line: "RMDIR s.sd/in", check: both(gone("s.sd/in"), there("s.sd/tok"))},
		{name: "xrmdir inside secure by name", line: "XRMDIR s.sd in", check: both(gone("s.sd/in"), there("s.sd/sub/g"))},
		{name: "rmdir secure itself", line: "RMDIR s.sd", want: 15, check: there("s.sd/tok", "s.sd/in/x")},
		{name: "rmdir root", line: "RMDIR ", want: 15, check: both(there("s.sd/tok", "s.sd/in/x", "d/in.sd/y"), gone("d/f", "f.txt", "e", "ld", "p", "in", "evil"))},
		{name: "rmdir root slash", line: "RMDIR /", want: 15, check: both(there("s.sd/tok", "d/in.sd/y"), gone("d/sub", "x", "xsub", "dangling"))},
		{name: "rmdir root locked", pre: "LOCK dangling", line: "RMDIR ", want: 30, check: unchanged},
		{name: "rmsecdir root locked", pre: "LOCK dangling", line: "RMSECDIR f.txt | ", want: 30, check: unchanged},
		{name: "rmdir missing", line: "RMDIR nope", want: 10},
		{name: "rmdir file", line: "RMDIR f.txt", want: 10, check: there("f.txt")},
		{name: "rmdir symlink", line: "RMDIR in", want: 10, check: there("in", "d/f")},
		{name: "rmdir locked parent", lock: true, line: "RMDIR ld/sub", want: 30, check: there("ld/sub/g")},
		{name: "rmdir locked self from parent", lock: true, line: "RMDIR ld", check: gone("ld")},
		// COPY §5.6
		{name: "copy", line: "COPY f.txt | c.txt", check: func(t *testing.T) {
			content("c.txt", "data")(t)
			a, _ := os.Stat(filepath.Join(root, "f.txt"))
			b, _ := os.Stat(filepath.Join(root, "c.txt"))
			if os.SameFile(a, b) {
				t.Error("COPY made a hard link")
			}
			if b.Mode().Perm() != a.Mode().Perm() {
				t.Errorf("mode %v, want %v", b.Mode(), a.Mode())
			}
		}},
		{name: "copy via symlink dir", line: "COPY in/f | c", check: content("c", "hello")},
		{name: "copy no separator", line: "COPY f.txt c.txt", want: 16},
		{name: "copy missing src", line: "COPY nope | c", want: 17},
		{name: "copy src under file", line: "COPY f.txt/x | c", want: 17},
		{name: "copy dir", line: "COPY d | c", want: 19, check: gone("c")},
		{name: "copy dst exists", line: "COPY f.txt | d/f", want: 12, check: content("d/f", "hello")},
		{name: "copy dst dir", line: "COPY f.txt | d", want: 12},
		{name: "copy fifo", line: "COPY p | c", want: 18, check: gone("c")},
		{name: "copy dst parent missing", line: "COPY f.txt | nope/c", want: 18},
		{name: "copy locked src", lock: true, line: "COPY ld/inner | c", want: 30, check: gone("c")},
		{name: "copy locked dst", lock: true, line: "COPY f.txt | ld/c", want: 30, check: gone("ld/c")},
		// TOUCH §5.7, §P row 18
		{name: "touch", line: "TOUCH t", check: content("t", "")},
		{name: "touch exists", line: "TOUCH f.txt", want: 12, check: content("f.txt", "data")},
		{name: "touch dir exists", line: "TOUCH d", want: 12},
		{name: "touch root", line: "TOUCH ", want: 12},
		{name: "touch missing parent", line: "TOUCH nope/t", want: 24},
		{name: "touch under file", line: "TOUCH f.txt/t", want: 24},
		{name: "touch locked", lock: true, line: "TOUCH ld/t", want: 30, check: gone("ld/t")},
		// FSTAT §5.10 (success values: TestFSTypedClient)
		{name: "fstat", line: "FSTAT f.txt"},
		{name: "fstat empty", line: "FSTAT ", want: 16},
		{name: "fstat missing", line: "FSTAT nope", want: 9},
		{name: "fstat under file", line: "FSTAT f.txt/x", want: 9},
		{name: "fstat locked dir self", lock: true, line: "FSTAT ld", want: 30},
		{name: "fstat locked file parent", lock: true, line: "FSTAT ld/inner", want: 30},
		{name: "fstat unlocked subdir", lock: true, line: "FSTAT ld/free/h"},
		{name: "fstat locked subdir self", lock: true, line: "FSTAT ld/sub", want: 30},
		// FUPD §5.11
		{name: "fupd", line: "FUPD f.txt", check: func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(root, "f.txt"))
			if err != nil || time.Since(fi.ModTime()) > time.Hour {
				t.Errorf("mtime not updated: %v %v", fi.ModTime(), err)
			}
		}},
		{name: "fupd dir", line: "FUPD d"},
		{name: "fupd empty", line: "FUPD ", want: 16},
		{name: "fupd missing", line: "FUPD nope", want: 9},
		{name: "fupd locked", lock: true, line: "FUPD ld/inner", want: 30},
		{name: "fupd locked dir", lock: true, line: "FUPD ld", want: 30},
		// CPDIR §5.16, §P row 19
		{name: "cpdir", line: "CPDIR d | d2", check: func(t *testing.T) {
			content("d2/f", "hello")(t)
			content("d2/sub/g", "g")(t)
			content("d2/in.sd/y", "y")(t)
			a, _ := os.Stat(filepath.Join(root, "d/f"))
			b, _ := os.Stat(filepath.Join(root, "d2/f"))
			if os.SameFile(a, b) {
				t.Error("CPDIR made a hard link")
			}
			fi, _ := os.Stat(filepath.Join(root, "d2"))
			if fi.Mode().Perm() != 0o750 {
				t.Errorf("d2 mode %v, want 0750", fi.Mode().Perm())
			}
		}},
		{name: "cpdir into itself", line: "CPDIR d | d/copy", check: both(content("d/copy/f", "hello"), there("d/copy/sub/g"), gone("d/copy/copy"))},
		{name: "cpdir skips symlinks and fifos", line: "CPDIR  | e/all", check: both(there("e/all/d/f", "e/all/f.txt"), gone("e/all/in", "e/all/p", "e/all/evil", "e/all/.tfd-staging-zz", "e/all/e/all"))},
		{name: "cpdir no separator", line: "CPDIR d d2", want: 16},
		{name: "cpdir missing src", line: "CPDIR nope | d2", want: 20},
		{name: "cpdir file src", line: "CPDIR f.txt | d2", want: 20, check: gone("d2")},
		{name: "cpdir dst exists", line: "CPDIR d | e", want: 4},
		{name: "cpdir dst root", line: "CPDIR d | ", want: 4},
		{name: "cpdir dst parent missing", line: "CPDIR d | nope/x", want: 21},
		{name: "cpdir locked src", lock: true, line: "CPDIR ld | c", want: 30, check: gone("c")},
		{name: "cpdir locked dst", lock: true, line: "CPDIR d | ld/c", want: 30, check: gone("ld/c")},
		// RENAM §5.15
		{name: "renam", line: "RENAM f.txt | g.txt", check: both(gone("f.txt"), content("g.txt", "data"))},
		{name: "renam dir", line: "RENAM d | e/d", check: both(gone("d"), content("e/d/f", "hello"))},
		{name: "renam no separator", line: "RENAM f.txt g.txt", want: 16},
		{name: "renam empty new", line: "RENAM f.txt | ", want: 16},
		{name: "renam missing", line: "RENAM nope | x", want: 31},
		{name: "renam into itself", line: "RENAM d | d/sub/x", want: 31},
		{name: "renam root", line: "RENAM  | x", want: 31},
		{name: "renam missing parent", line: "RENAM f.txt | nope/x", want: 31},
		{name: "renam locked dir self", lock: true, line: "RENAM ld | x", want: 30, check: there("ld")},
		{name: "renam locked file", lock: true, line: "RENAM ld/inner | x", want: 30},
		{name: "renam locked dst", lock: true, line: "RENAM f.txt | ld/x", want: 30, check: there("f.txt")},
		// LOCK §5.21 (sequence: TestFSLock)
		{name: "lock dot", line: "LOCK a.b", want: 28},
		{name: "lock slash", line: "LOCK a/b", want: 28},
		{name: "lock dotdot", line: "LOCK ..", want: 28},
		{name: "lock nul", line: "LOCK a\x00b", want: 28},
		{name: "lock long", line: "LOCK " + strings.Repeat("l", 300), want: 28},
		{name: "lock off", line: "LOCK "},
		// RMSECDIR §5.34
		{name: "rmsecdir", line: "RMSECDIR tok | s.sd", check: gone("s.sd")},
		{name: "rmsecdir nested sd", line: "RMSECDIR f | d", check: gone("d")},
		{name: "rmsecdir no separator", line: "RMSECDIR tok s.sd", want: 16},
		{name: "rmsecdir wrong token", line: "RMSECDIR bad | s.sd", want: 47, check: there("s.sd/tok")},
		{name: "rmsecdir token path", line: "RMSECDIR ../f.txt | s.sd", want: 47, check: there("s.sd/tok")},
		{name: "rmsecdir missing dir", line: "RMSECDIR tok | nope", want: 47},
		{name: "rmsecdir file", line: "RMSECDIR tok | f.txt", want: 47, check: there("f.txt")},
		{name: "rmsecdir root", line: "RMSECDIR f.txt | ", want: 15, check: gone("f.txt", "s.sd", "d", "ld")},
		{name: "rmsecdir root wrong token", line: "RMSECDIR nope | ", want: 47, check: unchanged},
		{name: "rmsecdir locked", lock: true, line: "RMSECDIR inner | ld", want: 30, check: there("ld/inner")},
		// XCOPY §5.17
		{name: "xcopy", line: "XCOPY n.txt f.txt | sub", check: both(
			content("d/sub/n.txt", "data"), content("x/sub/n.txt", "data"), content("xsub/n.txt", "data"),
			gone("s.sd/sub/n.txt", "d/in.sd/n.txt"))},
		{name: "xcopy skips locked", lock: true, line: "XCOPY n.txt f.txt | sub", check: both(content("d/sub/n.txt", "data"), gone("ld/sub/n.txt"))},
		{name: "xcopy skips existing", line: "XCOPY g f.txt | sub", check: both(content("d/sub/g", "g"), content("xsub/g", "data"))},
		{name: "xcopy exact pattern", line: "XCOPY n.txt f.txt | /d/sub", check: both(there("d/sub/n.txt"), gone("x/sub/n.txt", "xsub/n.txt"))},
		{name: "xcopy root pattern", line: "XCOPY n.txt f.txt | /", check: both(there("n.txt"), gone("d/n.txt"))},
		{name: "xcopy no separator", line: "XCOPY n f.txt sub", want: 16},
		{name: "xcopy no newname", line: "XCOPY f.txt | sub", want: 16},
		{name: "xcopy empty pattern", line: "XCOPY n f.txt | ", want: 16},
		{name: "xcopy newname slash", line: "XCOPY ../n f.txt | sub", want: 1, check: gone("d/n")},
		{name: "xcopy newname dotdot", line: "XCOPY .. f.txt | sub", want: 1},
		{name: "xcopy newname dot", line: "XCOPY . f.txt | sub", want: 1},
		{name: "xcopy missing src", line: "XCOPY n nope | sub", want: 17},
		{name: "xcopy dir src", line: "XCOPY n d | sub", want: 23},
		{name: "xcopy fifo src", line: "XCOPY n p | sub", want: 23},
		{name: "xcopy locked src", lock: true, line: "XCOPY n ld/inner | sub", want: 30, check: gone("d/sub/n")},
		// XCPDIR §5.18
		{name: "xcpdir", line: "XCPDIR nd d | sub", check: both(
			content("d/sub/nd/f", "hello"), there("d/sub/nd/sub/g", "x/sub/nd/sub", "xsub/nd/f"),
			gone("d/sub/nd/sub/nd", "s.sd/sub/nd"))},
		{name: "xcpdir of the root", line: "XCPDIR n  | sub", check: both(
			there("d/sub/n/f.txt", "ld/sub/n/d/sub/g", "xsub/n/x/sub/g"),
			gone("d/sub/n/d/sub/n", "ld/sub/n/d/sub/n", "xsub/n/d/sub/n", "xsub/n/x/sub/n", "xsub/n/xsub/n"))},
		{name: "xcpdir skips locked", lock: true, line: "XCPDIR nd e | sub", check: both(there("d/sub/nd"), gone("ld/sub/nd"))},
		{name: "xcpdir no separator", line: "XCPDIR nd d sub", want: 16},
		{name: "xcpdir newname slash", line: "XCPDIR a/b d | sub", want: 1},
		{name: "xcpdir missing src", line: "XCPDIR nd nope | sub", want: 29},
		{name: "xcpdir file src", line: "XCPDIR nd f.txt | sub", want: 20},
		{name: "xcpdir locked src", lock: true, line: "XCPDIR nd ld | sub", want: 30, check: gone("d/sub/nd")},
		// XDEL §5.19
		{name: "xdel", line: "XDEL  g", check: both(gone("d/sub/g", "x/sub/g", "ld/sub/g"), there("s.sd/sub/g"))},
		{name: "xdel skips locked", lock: true, line: "XDEL  g", check: both(gone("d/sub/g"), there("ld/sub/g"))},
		{name: "xdel suffix", line: "XDEL d f", check: both(gone("d/f"), there("d/sub/g", "f.txt"))},
		{name: "xdel inside secure by name", line: "XDEL s.sd g", check: both(gone("s.sd/sub/g"), there("d/sub/g"))},
		{name: "xdel keeps dirs", line: "XDEL  sub", check: there("d/sub", "x/sub")},
		{name: "xdel no name", line: "XDEL d", want: 16},
		{name: "xdel empty name", line: "XDEL d ", want: 16},
		{name: "xdel missing dir", line: "XDEL nope g", want: 1},
		{name: "xdel file dir", line: "XDEL f.txt g", want: 20},
		{name: "xdel locked dir", lock: true, line: "XDEL ld g", want: 30, check: there("ld/sub/g")},
		// XRMDIR §5.20
		{name: "xrmdir", line: "XRMDIR  sub", check: both(gone("d/sub", "x/sub", "xsub", "ld/sub"), there("s.sd/sub/g", "x", "ld/inner"))},
		{name: "xrmdir skips locked", lock: true, line: "XRMDIR  sub", check: both(gone("d/sub", "x/sub"), there("ld/sub/g"))},
		{name: "xrmdir keeps secure inside", line: "XRMDIR  d", check: there("d/in.sd/y")},
		{name: "xrmdir no name", line: "XRMDIR d", want: 16},
		{name: "xrmdir missing dir", line: "XRMDIR nope sub", want: 10},
		{name: "xrmdir file dir", line: "XRMDIR f.txt sub", want: 20},
		{name: "xrmdir locked dir", lock: true, line: "XRMDIR ld sub", want: 30, check: there("ld/sub")},
		// LS / LSR §5.14 (listings: TestFSList)
		{name: "ls missing", line: "LS nope", want: 10},
		{name: "ls file", line: "LS f.txt", want: 10},
		{name: "ls fifo", line: "LS p", want: 10},
		{name: "ls locked", lock: true, line: "LS ld", want: 30},
		{name: "lsr missing", line: "LSR nope", want: 10},
		{name: "lsr file", line: "LSR f.txt", want: 10},
		{name: "lsr locked", lock: true, line: "LSR ld", want: 30},
		{name: "ls empty dir", line: "LS e"},
		{name: "lsr empty dir", line: "LSR e"},
		// RCVFILE §5.12 (transfers: TestFSReceiveFile)
		{name: "rcvfile no flag separator", line: "RCVFILE 0", want: 16},
		{name: "rcvfile missing", line: "RCVFILE 0 nope", want: 9},
		{name: "rcvfile dir", line: "RCVFILE 0 d", want: 8},
		{name: "rcvfile root", line: "RCVFILE 0 ", want: 8},
		{name: "rcvfile fifo", line: "RCVFILE 0 p", want: 7},
		{name: "rcvfile locked", lock: true, line: "RCVFILE 0 ld/inner", want: 30},
		{name: "rcvfile empty file", line: "RCVFILE 1 e2", check: gone("e2")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsFixture(t, srv)
			if tc.name == "rcvfile empty file" {
				os.WriteFile(filepath.Join(root, "e2"), nil, 0o644)
			}
			c := srv.Dial(t)
			if tc.lock {
				tc.pre = "LOCK lk"
			}
			if tc.pre != "" {
				if code := statusCode(t, c, tc.pre); code != 0 {
					t.Fatalf("%s: %d", tc.pre, code)
				}
			}
			if got := statusCode(t, c, tc.line); got != tc.want {
				t.Fatalf("%.60q = %d, want %d", tc.line, got, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
			// The session is still in step.
			if got, err := c.Echo(servertest.Context(t), "still"); err != nil || got != "still" {
				t.Fatalf("session out of step: %q %v", got, err)
			}
			outsideIntact(t, srv)
		})
	}
}

// TestFSJail sends every path-taking command the escape attempts of WIRE.md §9
// items 5–7; each must answer FAILED 1 and leave everything outside the root
// as it was.
func TestFSJail(t *testing.T) {
	srv := servertest.Start(t)
	fsFixture(t, srv)
	c := srv.Dial(t)
	attacks := []string{"..", "/..", "../../etc/passwd", "d/../../secret", "evil", "evil/etc/passwd", "evilf",
		"evild", "evild/o", "in/../../secret", strings.Repeat("n", 5000), "a\x00b", "f.txt\x00",
		strings.Repeat("x/", 2100), "x/" + strings.Repeat("n", 256)}
	templates := []string{"MKDIR %s", "DEL %s", "RMDIR %s", "COPY %s | c", "COPY f.txt | %s", "TOUCH %s",
		"FSTAT %s", "FUPD %s", "CPDIR %s | c", "CPDIR d | %s", "RENAM %s | c", "RENAM f.txt | %s",
		"RMSECDIR tok | %s", "XCOPY n %s | sub", "XCPDIR n %s | sub", "XDEL %s g", "XRMDIR %s sub",
		"LS %s", "LSR %s", "RCVFILE 0 %s", "RCVFILE 1 %s"}
	for _, tpl := range templates {
		for _, a := range attacks {
			line := strings.Replace(tpl, "%s", a, 1)
			if got := statusCode(t, c, line); got != tfproto.CodeAccessDenied {
				t.Errorf("%.50q = %d, want 1", line, got)
			}
		}
	}
	outsideIntact(t, srv)
	for _, n := range []string{"evil", "evilf", "evild", "f.txt", "d/f"} {
		if !exists(srv.Root, n) {
			t.Errorf("%s was removed", n)
		}
	}
	if exists(srv.Root, "c") {
		t.Error("c was created")
	}
}

// TestFSLock covers LOCK as a session setting: on, per directory, not
// inherited, per connection, off.
func TestFSLock(t *testing.T) {
	srv := servertest.Start(t)
	fsFixture(t, srv)
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	other := srv.Dial(t)
	if err := c.Lock(ctx, "lk"); err != nil {
		t.Fatal(err)
	}
	if code := codeOf(t, c.Mkdir(ctx, "ld/x")); code != tfproto.CodeLocked {
		t.Fatalf("MKDIR in locked dir: %d", code)
	}
	if err := other.Mkdir(ctx, "ld/x"); err != nil {
		t.Fatalf("another session is not locked: %v", err)
	}
	if err := c.Touch(ctx, "ld/sub/deep"); codeOf(t, err) != tfproto.CodeLocked {
		t.Fatalf("ld/sub has its own lk file, TOUCH: %v", err)
	}
	if err := c.Delete(ctx, "ld/sub/lk"); err != nil {
		t.Fatalf("DEL of the lock file: %v", err)
	}
	if err := c.Touch(ctx, "ld/sub/deep"); err != nil {
		t.Fatalf("TOUCH after unlock: %v", err)
	}
	if code := codeOf(t, c.Lock(ctx, "a.b")); code != tfproto.CodeLockToken {
		t.Fatalf("LOCK a.b: %d", code)
	}
	// A refused name leaves the setting as it was.
	if code := codeOf(t, c.Mkdir(ctx, "ld/y")); code != tfproto.CodeLocked {
		t.Fatalf("after a refused LOCK: %d", code)
	}
	if err := c.Lock(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "ld/y"); err != nil {
		t.Fatalf("locking off: %v", err)
	}
}

// TestFSTypedClient exercises the Go client's typed methods.
func TestFSTypedClient(t *testing.T) {
	srv := servertest.Start(t)
	fsFixture(t, srv)
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	root := srv.Root

	fi, err := c.Stat(ctx, "f.txt")
	if err != nil || fi.Type != 'F' || fi.Size != 4 || !fi.Mtime.Equal(oldTime) {
		t.Fatalf("Stat f.txt = %+v, %v", fi, err)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(root, "f.txt"), &st)
	if fi.Atime.Unix() != st.Atim.Sec {
		t.Fatalf("atime %v, want %d", fi.Atime, st.Atim.Sec)
	}
	for name, typ := range map[string]byte{"d": 'D', "in": 'D', "p": 'U', "/": 'D', "s.sd": 'D'} {
		if fi, err := c.Stat(ctx, name); err != nil || fi.Type != typ {
			t.Fatalf("Stat %q = %+v, %v", name, fi, err)
		}
	}
	if err := c.Touchup(ctx, "f.txt"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := c.Stat(ctx, "f.txt"); fi.Mtime.Equal(oldTime) {
		t.Fatal("FUPD did not change mtime")
	}
	steps := []struct {
		name string
		err  error
	}{
		{"Mkdir", c.Mkdir(ctx, "m")},
		{"Touch", c.Touch(ctx, "m/t")},
		{"Copy", c.Copy(ctx, "f.txt", "m/c")},
		{"CopyDir", c.CopyDir(ctx, "m", "m2")},
		{"Rename", c.Rename(ctx, "m2", "m3")},
		{"XCopy", c.XCopy(ctx, "xc", "f.txt", "/m3")},
		{"XCopyDir", c.XCopyDir(ctx, "xd", "e", "/m3")},
		{"XDelete", c.XDelete(ctx, "m3", "/m3/t")},
		{"XRmdir", c.XRmdir(ctx, "m3", "xd")},
		{"Delete", c.Delete(ctx, "m/c")},
		{"Rmdir", c.Rmdir(ctx, "m")},
		{"RemoveSecureDir", c.RemoveSecureDir(ctx, "tok", "s.sd")},
	}
	for _, s := range steps {
		if s.err != nil {
			t.Fatalf("%s: %v", s.name, s.err)
		}
	}
	for _, n := range []string{"m3/c", "m3/xc"} {
		if !exists(root, n) {
			t.Errorf("%s missing", n)
		}
	}
	for _, n := range []string{"m", "m3/t", "m3/xd", "s.sd"} {
		if exists(root, n) {
			t.Errorf("%s still there", n)
		}
	}
	if code := codeOf(t, c.Rmdir(ctx, "nope")); code != tfproto.CodeDirNotExist {
		t.Fatalf("Rmdir nope: %d", code)
	}
}
