package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/notify"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func ntfyMkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// ntfyTouch creates files with one byte each, atomically: written outside the
// root and renamed in, so a sweep never sees a file that is still changing (a
// kept file that changes is notified again).
func ntfyTouch(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		tmp := filepath.Join(filepath.Dir(root), "ntfy-staging")
		if err := os.WriteFile(tmp, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, n)); err != nil {
			t.Fatal(err)
		}
	}
}

func ntfyExists(root, name string) bool {
	_, err := os.Lstat(filepath.Join(root, name))
	return err == nil
}

func TestAddNtfy(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "d", "d/sub", "x.sd")
	ntfyTouch(t, srv.Root, "file")
	if err := os.Symlink(os.TempDir(), filepath.Join(srv.Root, "out")); err != nil {
		t.Fatal(err)
	}
	conn := srv.DialHandshake(t)
	ok := "OK"
	f1 := tfproto.CodeAccessDenied.Line()
	f5 := tfproto.CodeNotifyAdd.Line()
	for _, tc := range []struct{ line, want string }{
		{"ADDNTFY evt d", ok},
		{"ADDNTFY  d", ok},               // empty token: every file
		{"ADDNTFY 1234567 /d/sub", ok},   // 7-byte token, leading "/"
		{"ADDNTFY tok", ok},              // no path: the root
		{"ADDNTFY tok x.sd", ok},         // secure directories too
		{"ADDNTFY 12345678 d", f5},       // token too long
		{"ADDNTFY . d", f5},              // forbidden tokens
		{"ADDNTFY .. d", f5},             //
		{"ADDNTFY a/b d", f5},            //
		{"ADDNTFY tok missing", f5},      // path must exist
		{"ADDNTFY tok file", ok},         // a file is accepted (and inert)
		{"ADDNTFY tok ../x", f1},         // jail
		{"ADDNTFY tok d/../../etc", f1},  //
		{"ADDNTFY tok out", f1},          // symlink leaving the root
		{"ADDNTFY tok d/with space", f5}, // the path is the rest of the line
	} {
		if got := servertest.Command(t, conn, tc.line); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestStartNtfyEmptyList(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	st, err := c.StartNotify(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Next(ctx)
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeNotifyEmpty {
		t.Fatalf("want FAILED 6, got %v", err)
	}
	// Still in standard mode.
	if got, err := c.Echo(ctx, "still here"); err != nil || got != "still here" {
		t.Fatalf("echo %q %v", got, err)
	}
}

// notifySession dials, adds entries (token, dir) and starts notification mode.
func notifySession(t *testing.T, srv *servertest.Server, interval string, entries ...[2]string) *client.NotifyStream {
	t.Helper()
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	for _, e := range entries {
		if err := c.AddNotify(ctx, e[0], e[1]); err != nil {
			t.Fatalf("ADDNTFY %q %q: %v", e[0], e[1], err)
		}
	}
	st, err := c.StartNotify(ctx, interval)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ntfyNext(t *testing.T, st *client.NotifyStream) client.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := st.Next(ctx)
	if err != nil {
		t.Fatalf("next notification: %v", err)
	}
	return n
}

func ntfyAnswer(t *testing.T, st *client.NotifyStream, a client.Answer) {
	t.Helper()
	if err := st.Answer(servertest.Context(t), a); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyBeforeAndAfterStart(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "in")
	ntfyTouch(t, srv.Root, "in/evt_1")
	st := notifySession(t, srv, "", [2]string{"evt", "in"})

	// A file that was there before STARTNTFY, deleted with DEL.
	if n := ntfyNext(t, st); n != (client.Notification{Index: 0, Name: "evt_1"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Delete)

	// Files created afterwards; kept with OK, each notified once.
	kept := map[string]bool{}
	for i, name := range []string{"evt_2", "evt_3", "evt_4"} {
		ntfyTouch(t, srv.Root, "in/"+name)
		n := ntfyNext(t, st)
		if n.Index != 0 || n.Name != name {
			t.Fatalf("round %d: got %+v, want %s (kept files must not come back)", i, n, name)
		}
		ntfyAnswer(t, st, client.Keep)
		kept[name] = true
	}
	if ntfyExists(srv.Root, "in/evt_1") {
		t.Fatal("DEL left the file")
	}
	for name := range kept {
		if !ntfyExists(srv.Root, "in/"+name) {
			t.Fatalf("OK deleted %s", name)
		}
	}
	// A kept file that is replaced (a new inode under the same name) is new.
	os.Remove(filepath.Join(srv.Root, "in/evt_2"))
	ntfyTouch(t, srv.Root, "in/evt_2")
	if n := ntfyNext(t, st); n.Name != "evt_2" {
		t.Fatalf("replaced file: got %+v", n)
	}
	ntfyAnswer(t, st, client.End)
	waitSessions(t, srv, 0)
}

func ntfyWaitGone(t *testing.T, root, name string) {
	t.Helper()
	ctx := servertest.Context(t)
	for ntfyExists(root, name) {
		if ctx.Err() != nil {
			t.Fatalf("%s still there", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNotifyTokensAndIndices(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "a", "b", "a/evt_dir")
	ntfyTouch(t, srv.Root, "a/other", "a/evt", "a/evt_x", "b/note")
	if err := os.Symlink("evt_x", filepath.Join(srv.Root, "a/evt_link")); err != nil {
		t.Fatal(err)
	}
	ntfyTouch(t, srv.Root, "a/.tfd-staging-evt_9") // an upload in progress, if the prefix matches
	st := notifySession(t, srv, "0", [2]string{"evt", "a"}, [2]string{"", "b"}, [2]string{"nomatch", "a"})
	got := map[string]int{}
	for range 3 {
		n := ntfyNext(t, st)
		got[n.Name] = n.Index
		ntfyAnswer(t, st, client.Delete)
	}
	want := map[string]int{"evt": 0, "evt_x": 0, "note": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if i, ok := got[k]; !ok || i != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Directories and symlinks are never notifications; the empty token takes
	// any name.
	ntfyTouch(t, srv.Root, "b/Zz 1")
	if n := ntfyNext(t, st); n != (client.Notification{Index: 1, Name: "Zz 1"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Keep)
	if !ntfyExists(srv.Root, "a/evt_dir") || !ntfyExists(srv.Root, "a/evt_link") || !ntfyExists(srv.Root, "a/other") {
		t.Fatal("a non-notification was deleted")
	}
}

func TestNotifySeveralEntriesOneSweep(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "d0", "d1", "d2")
	ntfyTouch(t, srv.Root, "d0/f", "d1/f", "d2/f", "d2/g")
	st := notifySession(t, srv, "", [2]string{"", "d0"}, [2]string{"", "d1"}, [2]string{"", "d2"})
	var order []int
	for range 4 {
		n := ntfyNext(t, st)
		order = append(order, n.Index)
		ntfyAnswer(t, st, client.Delete)
	}
	// One file per entry per sweep, entries in order: 0 1 2, then 2 again.
	if order[0] != 0 || order[1] != 1 || order[2] != 2 || order[3] != 2 {
		t.Fatalf("order %v", order)
	}
	// Wait for the last DEL to be done: the next notification comes after it.
	ntfyTouch(t, srv.Root, "d0/sync")
	if n := ntfyNext(t, st); n.Name != "sync" {
		t.Fatalf("got %+v", n)
	}
	for _, f := range []string{"d0/f", "d1/f", "d2/f", "d2/g"} {
		if ntfyExists(srv.Root, f) {
			t.Fatalf("%s not deleted", f)
		}
	}
}

func TestNotifyIntervals(t *testing.T) {
	for _, iv := range []string{"", "0", "0.5", "1e-3", "1.0e-9", "0x1p-4", " 0.02", "garbage", "-1", "5e-2xyz"} {
		t.Run(iv, func(t *testing.T) {
			srv := servertest.Start(t)
			ntfyMkdirs(t, srv.Root, "d")
			ntfyTouch(t, srv.Root, "d/before")
			st := notifySession(t, srv, iv, [2]string{"", "d"})
			if n := ntfyNext(t, st); n.Name != "before" {
				t.Fatalf("got %+v", n)
			}
			ntfyAnswer(t, st, client.Delete)
			ntfyTouch(t, srv.Root, "d/after")
			if n := ntfyNext(t, st); n.Name != "after" {
				t.Fatalf("got %+v", n)
			}
			ntfyAnswer(t, st, client.Keep)
		})
	}
}

func TestNotifyDirectoryRemoved(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "gone", "stay")
	st := notifySession(t, srv, "0.01", [2]string{"", "gone"}, [2]string{"", "stay"})
	ntfyTouch(t, srv.Root, "gone/f1")
	if n := ntfyNext(t, st); n != (client.Notification{Index: 0, Name: "f1"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Keep)
	if err := os.RemoveAll(filepath.Join(srv.Root, "gone")); err != nil {
		t.Fatal(err)
	}
	// The other entry keeps working.
	ntfyTouch(t, srv.Root, "stay/s1")
	if n := ntfyNext(t, st); n != (client.Notification{Index: 1, Name: "s1"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Delete)
	// The directory comes back: its entry works again, f1 is a new file.
	ntfyMkdirs(t, srv.Root, "gone")
	ntfyTouch(t, srv.Root, "gone/f1")
	if n := ntfyNext(t, st); n != (client.Notification{Index: 0, Name: "f1"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Delete)
	ntfyWaitGone(t, srv.Root, "gone/f1")
	// Replaced by a rename: the new directory is the one watched.
	ntfyMkdirs(t, srv.Root, "new")
	if err := os.Rename(filepath.Join(srv.Root, "gone"), filepath.Join(srv.Root, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(srv.Root, "new"), filepath.Join(srv.Root, "gone")); err != nil {
		t.Fatal(err)
	}
	ntfyTouch(t, srv.Root, "old/ignored", "gone/f2")
	if n := ntfyNext(t, st); n != (client.Notification{Index: 0, Name: "f2"}) {
		t.Fatalf("got %+v", n)
	}
	ntfyAnswer(t, st, client.Keep)
}

func TestNotifyEnd(t *testing.T) {
	t.Run("END answer", func(t *testing.T) {
		srv := servertest.Start(t)
		ntfyMkdirs(t, srv.Root, "d")
		ntfyTouch(t, srv.Root, "d/f")
		st := notifySession(t, srv, "", [2]string{"", "d"})
		ntfyNext(t, st)
		ntfyAnswer(t, st, client.End)
		waitSessions(t, srv, 0)
		if !ntfyExists(srv.Root, "d/f") {
			t.Fatal("END deleted the file")
		}
	})
	t.Run("lower-case del", func(t *testing.T) {
		srv := servertest.Start(t)
		ntfyMkdirs(t, srv.Root, "d")
		ntfyTouch(t, srv.Root, "d/f")
		st := notifySession(t, srv, "", [2]string{"", "d"})
		ntfyNext(t, st)
		ntfyAnswer(t, st, "del")
		ntfyTouch(t, srv.Root, "d/g")
		if n := ntfyNext(t, st); n.Name != "g" {
			t.Fatalf("got %+v", n)
		}
		if ntfyExists(srv.Root, "d/f") {
			t.Fatal("del (lower case) kept the file")
		}
		ntfyAnswer(t, st, "delete") // not DEL: keep
		ntfyTouch(t, srv.Root, "d/h")
		if n := ntfyNext(t, st); n.Name != "h" {
			t.Fatalf("got %+v", n)
		}
		if !ntfyExists(srv.Root, "d/g") {
			t.Fatal("an unknown answer deleted the file")
		}
	})
	t.Run("client closes while idle", func(t *testing.T) {
		srv := servertest.Start(t)
		ntfyMkdirs(t, srv.Root, "d")
		c := srv.Dial(t)
		ctx := servertest.Context(t)
		if err := c.AddNotify(ctx, "", "d"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.StartNotify(ctx, "10"); err != nil {
			t.Fatal(err)
		}
		waitSessions(t, srv, 1)
		c.Conn().NetConn().Close()
		waitSessions(t, srv, 0)
	})
	t.Run("unsolicited END while idle", func(t *testing.T) {
		srv := servertest.Start(t)
		ntfyMkdirs(t, srv.Root, "d")
		conn := srv.DialHandshake(t)
		if got := servertest.Command(t, conn, "ADDNTFY  d"); got != "OK" {
			t.Fatal(got)
		}
		if err := conn.WriteFrameString("STARTNTFY 10"); err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteFrameString("end"); err != nil {
			t.Fatal(err)
		}
		servertest.ExpectClosed(t, conn)
	})
}

// The same scenarios without inotify: every directory is swept each interval.
func TestNotifyPollingFallback(t *testing.T) {
	notify.ForcePolling(true)
	defer notify.ForcePolling(false)
	t.Run("before and after start", TestNotifyBeforeAndAfterStart)
	t.Run("tokens and indices", TestNotifyTokensAndIndices)
	t.Run("several entries", TestNotifySeveralEntriesOneSweep)
	t.Run("directory removed", TestNotifyDirectoryRemoved)
}

// Two sessions on one directory share its inotify watch; each gets its own
// files, and one ending does not silence the other.
func TestNotifyTwoSessionsOneDirectory(t *testing.T) {
	srv := servertest.Start(t)
	ntfyMkdirs(t, srv.Root, "shared")
	a := notifySession(t, srv, "", [2]string{"a_", "shared"})
	b := notifySession(t, srv, "", [2]string{"b_", "shared"})
	ntfyTouch(t, srv.Root, "shared/b_1", "shared/a_1")
	if n := ntfyNext(t, a); n.Name != "a_1" {
		t.Fatalf("a got %+v", n)
	}
	ntfyAnswer(t, a, client.End)
	if n := ntfyNext(t, b); n.Name != "b_1" {
		t.Fatalf("b got %+v", n)
	}
	ntfyAnswer(t, b, client.Keep)
	waitSessions(t, srv, 1)
	ntfyTouch(t, srv.Root, "shared/b_2")
	if n := ntfyNext(t, b); n.Name != "b_2" {
		t.Fatalf("b got %+v", n)
	}
	ntfyAnswer(t, b, client.Keep)
}

func TestAddNtfyLimit(t *testing.T) {
	srv := servertest.Start(t)
	conn := srv.DialHandshake(t)
	for i := range notify.MaxEntries {
		if got := servertest.Command(t, conn, "ADDNTFY t"); got != "OK" {
			t.Fatalf("entry %d: %q", i, got)
		}
	}
	if got := servertest.Command(t, conn, "ADDNTFY t"); got != tfproto.CodeNotifyAdd.Line() {
		t.Fatalf("entry beyond the limit: %q", got)
	}
}
