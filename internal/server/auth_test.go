package server_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/auth"
	"github.com/tfd-project/tfd/internal/auth/authtest"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// Helpers for the auth tests.

func writeFile(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func chownTo(t *testing.T, path, name string) {
	t.Helper()
	p, err := auth.LookupPersona(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, p.UID, p.GID); err != nil {
		t.Fatal(err)
	}
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// userDB writes a user database file and returns its path.
func userDB(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startMulti starts a multi-user server on db with a short failure delay and
// a dbdir every user may create files in (sticky, like /tmp).
func startMulti(t *testing.T, db string, changes ...func(*config.Config)) *servertest.Server {
	t.Helper()
	srv := servertest.Start(t, append([]func(*config.Config){func(c *config.Config) {
		c.UserDB = db
		c.LoginFailDelay = time.Millisecond
	}}, changes...)...)
	if err := os.Chmod(srv.Root, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return srv
}

func expect(t *testing.T, c *tfproto.Conn, tests []struct{ in, want string }) {
	t.Helper()
	for _, tt := range tests {
		if got := servertest.Command(t, c, tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
	}
}

func loginConn(t *testing.T, srv *servertest.Server, name, pw string) *tfproto.Conn {
	t.Helper()
	c := srv.DialHandshake(t)
	if got := servertest.Command(t, c, "LOGIN "+name+" "+pw); got != "OK" {
		t.Fatalf("LOGIN %s: %q", name, got)
	}
	return c
}

func failedCode(err error) tfproto.Code {
	var fe *tfproto.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return -1
}

const (
	f16 = "FAILED 16 : Missing parameter from command."
	f1  = "FAILED 1 : Access denied to location."
	f9  = "FAILED 9 : File does not exist."
	f37 = "FAILED 37 : Login failed."
	f38 = "FAILED 38 : Invalid command before login."
	f39 = "FAILED 39 : The process is already logged."
	f40 = "FAILED 40 : Failed to open users database."
	f41 = "FAILED 41 : Failed to change file mode."
	f42 = "FAILED 42 : System user does not exist."
	f43 = "FAILED 43 : System group does not exist."
	f44 = "FAILED 44 : Failed to change file ownership."
	f48 = "FAILED 48 : Failed to open ACL file in jail directory."
	f49 = "FAILED 49 : Invalid security token in jail directory."
	f50 = "FAILED 50 : Invalid command before in-jail."
	f51 = "FAILED 51 : The process is already in-jailed."
)

// TestLogin covers LOGIN in multi-user mode: hashed and plaintext entries,
// exact whole-name matching, every status code, and the gate before LOGIN.
func TestLogin(t *testing.T) {
	a, b := authtest.NewUser(t), authtest.NewUser(t)
	db := userDB(t,
		"# test users",
		"x"+a+" substringpw", // a's name inside another line's name
		a+" "+hashOf(t, "hashed pw"),
		b+" plainpw",
		"tfd-not-a-system-user pw",
	)
	srv := startMulti(t, db)

	c := srv.DialHandshake(t)
	expect(t, c, []struct{ in, want string }{
		{"ECHO hi", f38},
		{"NOSUCH", f38},
		{"MKDIR x", f38},
		{"CHMOD x 777", f38},
		{"CHOWN x root root", f38},
		{"INJAIL t | x", f38},
		{"LOGIN", f16},
		{"LOGIN " + a, f16},
		{"LOGIN " + a + " ", f16},
		{"LOGIN  hashed pw", f16},
		{"LOGIN " + a + " substringpw", f37},  // the reference's substring match would accept this
		{"LOGIN x" + a + " substringpw", f37}, // in the db but not a system user
		{"LOGIN " + a + " hashed", f37},
		{"LOGIN " + a + " hashed pw ", f37},
		{"LOGIN " + strings.ToUpper(a) + " hashed pw", f37},
		{"LOGIN tfd-not-a-system-user pw", f37},
		{"LOGIN nobody-at-all pw", f37},
		{"LOGIN " + b + " plainpw\x00", f37},
		{"ECHO still gated", f38},
		{"login " + a + " hashed pw", "OK"}, // hashed entry; the name of the command is case-insensitive
		{"ECHO in", "in"},
		{"LOGIN " + a + " hashed pw", f39},
		{"LOGIN " + b + " plainpw", f39},
	})
	if got := servertest.Command(t, c, "PROCKEY"); !strings.HasPrefix(got, "OK /") {
		t.Errorf("PROCKEY after LOGIN: %q", got)
	}
	// PROCKEY and END run before LOGIN.
	c2 := srv.DialHandshake(t)
	if got := servertest.Command(t, c2, "PROCKEY"); !strings.HasPrefix(got, "OK /") {
		t.Errorf("PROCKEY before LOGIN: %q", got)
	}
	expect(t, c2, []struct{ in, want string }{{"LOGIN " + b + " plainpw", "OK"}, {"ECHO b", "b"}}) // plaintext entry
	c2.WriteFrameString("END")
	servertest.ExpectClosed(t, c2)

	// The typed client.
	cl := srv.Dial(t)
	ctx := servertest.Context(t)
	if err := cl.Login(ctx, a, "wrong"); failedCode(err) != tfproto.CodeLoginFailed {
		t.Fatalf("client Login with a wrong password: %v", err)
	}
	if err := cl.Login(ctx, a, "hashed pw"); err != nil {
		t.Fatal(err)
	}

	// The database is read at each LOGIN: a new entry works at once, and a
	// missing file answers 40.
	if err := os.WriteFile(db, []byte(b+" newpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, srv.DialHandshake(t), []struct{ in, want string }{{"LOGIN " + a + " hashed pw", f37}, {"LOGIN " + b + " newpw", "OK"}})
	os.Remove(db)
	expect(t, srv.DialHandshake(t), []struct{ in, want string }{{"LOGIN " + b + " newpw", f40}, {"LOGIN " + b, f16}})
}

// TestLoginFailureDelay: a failed LOGIN answers no sooner than the configured
// delay, and while one session waits out its delay another logs in and works.
func TestLoginFailureDelay(t *testing.T) {
	t.Parallel()
	a := authtest.NewUser(t)
	const delay = 1500 * time.Millisecond
	srv := startMulti(t, userDB(t, a+" pw"), func(c *config.Config) { c.LoginFailDelay = delay })
	slow := srv.DialHandshake(t)
	fast := srv.DialHandshake(t)

	start := time.Now()
	if err := slow.WriteFrameString("LOGIN " + a + " wrong"); err != nil {
		t.Fatal(err)
	}
	type reply struct {
		body string
		at   time.Time
	}
	got := make(chan reply, 1)
	go func() {
		b, _ := slow.ReadFrame(0)
		got <- reply{string(b), time.Now()}
	}()
	expect(t, fast, []struct{ in, want string }{{"LOGIN " + a + " pw", "OK"}, {"ECHO meanwhile", "meanwhile"}})
	fastDone := time.Now()
	r := <-got
	if r.body != f37 {
		t.Fatalf("failed LOGIN: %q", r.body)
	}
	if r.at.Sub(start) < delay {
		t.Errorf("failed LOGIN answered after %v, before the %v delay", r.at.Sub(start), delay)
	}
	if !fastDone.Before(r.at) {
		t.Errorf("the other session finished at %v, after the delayed reply at %v: the delay blocked it", fastDone.Sub(start), r.at.Sub(start))
	}
}

// TestPersonaPermissions: two system users in multi-user mode. The kernel
// enforces each user's permissions on the session's file operations: neither
// can change the other's files (CHMOD 41, CHOWN 44), each can change its own,
// neither can give files away, and a 0600 file of B (a jail.key, read by
// INJAIL with the session's permissions) is readable by B and not by A.
func TestPersonaPermissions(t *testing.T) {
	a, b := authtest.NewUser(t), authtest.NewUser(t)
	srv := startMulti(t, userDB(t, a+" "+hashOf(t, "apw"), b+" bpw"), func(c *config.Config) { c.InJail = true })
	root := srv.Root
	writeFile(t, filepath.Join(root, "a.txt"), "A", 0o600)
	chownTo(t, filepath.Join(root, "a.txt"), a)
	writeFile(t, filepath.Join(root, "b.txt"), "B", 0o600)
	chownTo(t, filepath.Join(root, "b.txt"), b)
	writeFile(t, filepath.Join(root, "jail.key"), "rootjail\n", 0o644) // jail at the root
	writeFile(t, filepath.Join(root, "bjail", "jail.key"), "btoken\n", 0o600)
	chownTo(t, filepath.Join(root, "bjail", "jail.key"), b)

	ca := loginConn(t, srv, a, "apw")
	cb := loginConn(t, srv, b, "bpw")
	// A cannot read B's 0600 file; B can.
	expect(t, ca, []struct{ in, want string }{{"ECHO x", f50}, {"INJAIL btoken | bjail", f48}, {"INJAIL rootjail | ", "OK"}})
	expect(t, cb, []struct{ in, want string }{{"INJAIL btoken | bjail", "OK"}})

	cb2 := loginConn(t, srv, b, "bpw")
	expect(t, cb2, []struct{ in, want string }{{"INJAIL rootjail | /", "OK"}})
	expect(t, ca, []struct{ in, want string }{
		{"CHMOD b.txt 644", f41},
		{"CHOWN b.txt " + a + " " + a, f44},
		{"CHMOD a.txt 640", "OK"},
		{"CHOWN a.txt root root", f44},       // no CAP_CHOWN as a persona
		{"CHOWN a.txt " + b + " " + b, f44},  // cannot give files away
		{"CHOWN a.txt " + a + " " + a, "OK"}, // to oneself is allowed by the kernel
	})
	expect(t, cb2, []struct{ in, want string }{
		{"CHMOD a.txt 644", f41},
		{"CHMOD b.txt 0604", "OK"},
	})
	if m := statOf(t, filepath.Join(root, "a.txt")).Mode & 0o7777; m != 0o640 {
		t.Errorf("a.txt mode %o, want 640", m)
	}
	if m := statOf(t, filepath.Join(root, "b.txt")).Mode & 0o7777; m != 0o604 {
		t.Errorf("b.txt mode %o, want 604", m)
	}
	pa, _ := auth.LookupPersona(a)
	if st := statOf(t, filepath.Join(root, "a.txt")); int(st.Uid) != pa.UID {
		t.Errorf("a.txt owner %d, want %d", st.Uid, pa.UID)
	}
}

// TestSingleUser: with defusr every session takes that user's permissions
// from the handshake on, LOGIN answers 39, and CHOWN as the persona fails.
func TestSingleUser(t *testing.T) {
	a := authtest.NewUser(t)
	srv := servertest.Start(t, func(c *config.Config) {
		c.DefUser = a
		c.UserDB = "/nonexistent/users" // defusr wins: single-user
	})
	os.Chmod(srv.Root, 0o777|fs.ModeSticky)
	writeFile(t, filepath.Join(srv.Root, "root.txt"), "r", 0o644)
	writeFile(t, filepath.Join(srv.Root, "mine.txt"), "m", 0o644)
	chownTo(t, filepath.Join(srv.Root, "mine.txt"), a)
	c := srv.DialHandshake(t)
	expect(t, c, []struct{ in, want string }{
		{"ECHO no login needed", "no login needed"},
		{"LOGIN " + a + " x", f39},
		{"CHMOD root.txt 600", f41},
		{"CHMOD mine.txt 600", "OK"},
		{"CHOWN mine.txt root root", f44},
		{"INJAIL t | x", f51}, // injail not configured
	})
	if m := statOf(t, filepath.Join(srv.Root, "root.txt")).Mode & 0o777; m != 0o644 {
		t.Errorf("root.txt changed to %o", m)
	}

	// Single-user with injail: only END and INJAIL before INJAIL.
	srv2 := servertest.Start(t, func(c *config.Config) { c.DefUser = a; c.InJail = true; c.LoginFailDelay = time.Millisecond })
	writeFile(t, filepath.Join(srv2.Root, "j", "jail.key"), "tok\n", 0o644)
	c2 := srv2.DialHandshake(t)
	expect(t, c2, []struct{ in, want string }{
		{"ECHO x", f50},
		{"LOGIN " + a + " x", f50},
		{"PROCKEY", f50},
		{"NOSUCH", f50},
		{"INJAIL tok | j", "OK"},
		{"ECHO x", "x"},
		{"LOGIN " + a + " x", f39},
		{"INJAIL tok | j", f51},
	})
}

// TestModeStartupChecks: the server refuses to start in a mode it cannot
// serve, saying why.
func TestModeStartupChecks(t *testing.T) {
	authtest.RequireRoot(t)
	a := authtest.NewUser(t)
	base := func() *config.Config {
		cfg := config.Default()
		cfg.DBDir = t.TempDir()
		cfg.PrivKeyPEM = tfproto.MarshalPrivateKeyPEM(servertest.Key(t))
		return cfg
	}
	tests := []struct {
		name   string
		change func(*config.Config)
		dropID bool // run New on a thread without CAP_SETUID/CAP_SETGID
		want   string
	}{
		{"unknown defusr", func(c *config.Config) { c.DefUser = "tfd-no-such-user" }, false, "no such system user"},
		{"multi-user without capabilities", func(c *config.Config) { c.UserDB = userDB(t, a+" pw") }, true, "CAP_SETUID"},
		{"single-user without capabilities", func(c *config.Config) { c.DefUser = a }, true, "CAP_SETGID"},
		{"single-user as oneself needs no capabilities", func(c *config.Config) { c.DefUser = "root" }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.change(cfg)
			errc := make(chan error)
			go func() {
				if tt.dropID {
					// capset changes this thread only; it dies with the
					// goroutine because it stays locked.
					runtime.LockOSThread()
					hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
					var data [2]unix.CapUserData
					unix.Capget(&hdr, &data[0])
					data[0].Effective &^= 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
					if err := unix.Capset(&hdr, &data[0]); err != nil {
						errc <- err
						return
					}
				}
				srv, err := server.New(cfg, nil)
				if err == nil {
					stopUnserved(t, srv)
				}
				errc <- err
			}()
			err := <-errc
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// With the capabilities, both modes start (and stop cleanly); a missing
	// user database is reported but not fatal (LOGIN answers 40, TestLogin).
	for _, ch := range []func(*config.Config){
		func(c *config.Config) { c.UserDB = userDB(t, a+" pw") },
		func(c *config.Config) { c.UserDB = filepath.Join(t.TempDir(), "none") },
		func(c *config.Config) { c.DefUser = "root" }, // the daemon's own user: no switch needed
		func(c *config.Config) { c.DefUser = a },
	} {
		cfg := base()
		ch(cfg)
		srv, err := server.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		stopUnserved(t, srv)
	}
}

// stopUnserved shuts down a server that was made but never served, so that the
// families it started stop.
func stopUnserved(t *testing.T, srv *server.Server) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx, ln); err != nil {
		t.Error(err)
	}
}

// TestChmod covers CHMOD's parsing and status codes as the daemon's user.
func TestChmod(t *testing.T) {
	srv := servertest.Start(t)
	root := srv.Root
	writeFile(t, filepath.Join(root, "f"), "x", 0o644)
	writeFile(t, filepath.Join(root, "a"), "x", 0o644)
	writeFile(t, filepath.Join(root, "d", "g"), "x", 0o644)
	writeFile(t, filepath.Join(filepath.Dir(root), "outside"), "x", 0o644)
	os.Symlink("f", filepath.Join(root, "link-in"))
	os.Symlink("../outside", filepath.Join(root, "link-out"))
	os.Symlink("/etc/passwd", filepath.Join(root, "link-abs"))
	c := srv.DialHandshake(t)
	mode := func(name string) fs.FileMode {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	tests := []struct {
		in, want string
		file     string
		mode     fs.FileMode
	}{
		{"CHMOD f 600", "OK", "f", 0o600},
		{"CHMOD /f 0640", "OK", "f", 0o640},
		{"CHMOD f 4755", "OK", "f", 0o755 | fs.ModeSetuid},
		{"CHMOD f 2750", "OK", "f", 0o750 | fs.ModeSetgid},
		{"CHMOD d 1777", "OK", "d", 0o777 | fs.ModeSticky},
		{"CHMOD d 755", "OK", "d", 0o755},
		{"CHMOD f 7", "OK", "f", 0o007},
		{"CHMOD d/g 0", "OK", "d/g", 0},
		{"CHMOD link-in 604", "OK", "f", 0o604}, // follows a symlink inside the root
		{"CHMOD f abc", f41, "f", 0o604},
		{"CHMOD f 8", f41, "f", 0o604},
		{"CHMOD f 0o755", f41, "f", 0o604},
		{"CHMOD f -1", f41, "f", 0o604},
		{"CHMOD f +755", f41, "f", 0o604},
		{"CHMOD f 00755", f41, "f", 0o604},
		{"CHMOD f 755 ", f41, "f", 0o604},
		{"CHMOD f  755", f41, "f", 0o604},
		{"CHMOD a b 755", f41, "a", 0o644}, // the reference chmods a to 0000 here
		{"CHMOD", f16, "f", 0o604},
		{"CHMOD ", f16, "f", 0o604},
		{"CHMOD f", f16, "f", 0o604},
		{"CHMOD f ", f16, "f", 0o604},
		{"CHMOD  755", f16, "f", 0o604},
		{"CHMOD nosuch 755", f9, "f", 0o604},
		{"CHMOD f/sub 755", f9, "f", 0o604},
		{"CHMOD ../outside 777", f1, "f", 0o604},
		{"CHMOD .. 777", f1, "f", 0o604},
		{"CHMOD d/../../outside 777", f1, "f", 0o604},
		{"CHMOD link-out 777", f1, "f", 0o604},
		{"CHMOD link-abs 777", f1, "f", 0o604},
		{"CHMOD .tfd-staging-x 777", f1, "f", 0o604},
	}
	for _, tt := range tests {
		if got := servertest.Command(t, c, tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
		if m := mode(tt.file); m != tt.mode {
			t.Errorf("after %q: %s is %v, want %v", tt.in, tt.file, m, tt.mode)
		}
	}
	if st, _ := os.Stat(filepath.Join(filepath.Dir(root), "outside")); st.Mode().Perm() != 0o644 {
		t.Errorf("file outside the root changed to %v", st.Mode())
	}
	// The typed client.
	cl := srv.Dial(t)
	ctx := servertest.Context(t)
	if err := cl.Chmod(ctx, "f", 0o640|fs.ModeSticky); err != nil || mode("f") != 0o640|fs.ModeSticky {
		t.Fatalf("client Chmod: %v, mode %v", err, mode("f"))
	}
	if err := cl.Chmod(ctx, "nosuch", 0o600); failedCode(err) != tfproto.CodeFileNotExist {
		t.Fatalf("client Chmod of a missing file: %v", err)
	}
}

// TestChown covers CHOWN's parsing and status codes as root.
func TestChown(t *testing.T) {
	a := authtest.NewUser(t)
	srv := servertest.Start(t)
	root := srv.Root
	writeFile(t, filepath.Join(root, "f"), "x", 0o644)
	writeFile(t, filepath.Join(filepath.Dir(root), "outside"), "x", 0o644)
	os.Symlink("../outside", filepath.Join(root, "link-out"))
	os.Symlink("f", filepath.Join(root, "link-in"))
	pa, _ := auth.LookupPersona(a)
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Fatal(err)
	}
	c := srv.DialHandshake(t)
	expect(t, c, []struct{ in, want string }{
		{"CHOWN f " + a + " " + a, "OK"},
		{"CHOWN", f16},
		{"CHOWN f", f16},
		{"CHOWN f " + a, f16},
		{"CHOWN f " + a + " ", f16},
		{"CHOWN  " + a + " " + a, f16},
		{"CHOWN ../outside " + a + " " + a, f1},
		{"CHOWN link-out " + a + " " + a, f1},
		{"CHOWN f tfd-no-such-user " + a, f42},
		{"CHOWN f " + a + " tfd-no-such-group", f43},
		{"CHOWN f 0 0", f42}, // names only
		{"CHOWN nosuch " + a + " " + a, f44},
	})
	if st := statOf(t, filepath.Join(root, "f")); int(st.Uid) != pa.UID || int(st.Gid) != pa.GID {
		t.Errorf("f owned by %d:%d, want %d:%d", st.Uid, st.Gid, pa.UID, pa.GID)
	}
	expect(t, c, []struct{ in, want string }{{"CHOWN link-in root " + rootGroup.Name, "OK"}})
	if st := statOf(t, filepath.Join(root, "f")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("CHOWN through a symlink: f owned by %d:%d", st.Uid, st.Gid)
	}
	if st := statOf(t, filepath.Join(filepath.Dir(root), "outside")); st.Uid != 0 {
		t.Error("file outside the root changed owner")
	}
	if err := srv.Dial(t).Chown(servertest.Context(t), "f", a, "tfd-no-such-group"); failedCode(err) != tfproto.CodeNoSuchGroup {
		t.Fatalf("client Chown: %v", err)
	}
}

// TestInjail covers INJAIL's status codes, the hidden jail.key, and that the
// jail cannot be left through "..", absolute paths or symlinks.
func TestInjail(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.InJail = true; c.LoginFailDelay = time.Millisecond })
	root := srv.Root
	writeFile(t, filepath.Join(root, "secret"), "s", 0o644)
	writeFile(t, filepath.Join(root, "jails", "a", "jail.key"), "first\ntok-a\ncr\r\n", 0o644)
	writeFile(t, filepath.Join(root, "jails", "a", "inside"), "i", 0o644)
	writeFile(t, filepath.Join(root, "jails", "a", "sub", "jail.key"), "nested\n", 0o644)
	writeFile(t, filepath.Join(root, "jails", "empty", "x"), "", 0o644)
	writeFile(t, filepath.Join(filepath.Dir(root), "outside", "jail.key"), "out\n", 0o644)
	os.Symlink("../../secret", filepath.Join(root, "jails", "a", "up"))
	os.Symlink(filepath.Join(root, "secret"), filepath.Join(root, "jails", "a", "abs"))
	os.Symlink("inside", filepath.Join(root, "jails", "a", "in"))
	os.Symlink("../../outside", filepath.Join(root, "jails", "toout"))
	modeOf := func(p string) fs.FileMode {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}

	c := srv.DialHandshake(t)
	expect(t, c, []struct{ in, want string }{
		{"ECHO x", f50},
		{"CHMOD secret 600", f50},
		{"INJAIL tok-a jails/a", f16},
		{"INJAIL  | jails/a", f16},
		{"INJAIL tok-a | ../outside", f1},
		{"INJAIL out | ..", f1},
		{"INJAIL out | jails/toout", f1},
		{"INJAIL tok-a | jails/none", f48},
		{"INJAIL tok-a | jails/empty", f48},
		{"INJAIL tok-a | secret", f48},
		{"INJAIL tok | jails/a", f49},
		{"INJAIL tok-a  | jails/a", f49},
		{"INJAIL cr | jails/a", f49},
		{"INJAIL nested | jails/a", f49},
		{"INJAIL tok-a | /jails/a/", "OK"},
		{"INJAIL tok-a | /jails/a/", f51},
		{"INJAIL nested | sub", f51},
		{"ECHO jailed", "jailed"},
		{"CHMOD inside 600", "OK"},
		{"CHMOD in 640", "OK"},
		{"CHMOD /inside 604", "OK"},
		{"CHMOD jail.key 777", f1},
		{"CHMOD /jail.key 777", f1},
		{"CHMOD ./jail.key 777", f1},
		{"CHMOD sub/../jail.key 777", f1},
		{"CHMOD JAIL.KEY 777", f1},
		{"CHMOD sub/jail.key 600", "OK"}, // only the jail's own key is hidden
		{"CHOWN jail.key root root", f1},
		{"CHMOD .. 777", f1},
		{"CHMOD ../secret 777", f1},
		{"CHMOD ../../secret 777", f1},
		{"CHMOD up 777", f1},
		{"CHMOD abs 777", f1},
		{"CHMOD / 755", "OK"},
	})
	if m := modeOf(filepath.Join(root, "jails", "a", "inside")); m != 0o604 {
		t.Errorf("inside mode %v", m)
	}
	if m := modeOf(filepath.Join(root, "secret")); m != 0o644 {
		t.Errorf("secret outside the jail changed to %v", m)
	}
	if m := modeOf(filepath.Join(root, "jails", "a", "jail.key")); m != 0o644 {
		t.Errorf("jail.key changed to %v", m)
	}

	// A jail at the root itself (empty path); INJAIL is not configured elsewhere.
	writeFile(t, filepath.Join(root, "jail.key"), "roottok\n", 0o644)
	expect(t, srv.DialHandshake(t), []struct{ in, want string }{{"INJAIL roottok | ", "OK"}, {"CHMOD jail.key 600", f1}, {"CHMOD secret 600", "OK"}})
	plain := servertest.Start(t)
	writeFile(t, filepath.Join(plain.Root, "j", "jail.key"), "t\n", 0o644)
	expect(t, plain.DialHandshake(t), []struct{ in, want string }{{"INJAIL t | j", f51}, {"INJAIL", f51}})

	// The typed client.
	cl := srv.Dial(t)
	ctx := servertest.Context(t)
	if err := cl.Injail(ctx, "wrong", "jails/a"); failedCode(err) != tfproto.CodeJailToken {
		t.Fatalf("client Injail with a wrong token: %v", err)
	}
	if err := cl.Injail(ctx, "first", "jails/a"); err != nil {
		t.Fatal(err)
	}
	// The transfer commands cannot read, replace or leave through the jail.
	if _, err := cl.SHA256(ctx, "inside"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jail.key", "/jail.key", "../secret", "up", "abs", "sub/../../secret"} {
		if _, err := cl.SHA256(ctx, name); failedCode(err) != tfproto.CodeAccessDenied {
			t.Errorf("SHA256 %s in the jail: %v, want FAILED 1", name, err)
		}
		var got strings.Builder
		if _, err := cl.Download(ctx, name, &got); err == nil || got.Len() != 0 {
			t.Errorf("SDOWN %s in the jail: %q %v", name, got.String(), err)
		}
	}
	for _, name := range []string{"jail.key", "../secret", "up"} {
		if _, err := cl.SendFile(ctx, name, strings.NewReader("replaced"), true); failedCode(err) != tfproto.CodeAccessDenied {
			t.Errorf("SNDFILE %s in the jail: %v, want FAILED 1", name, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "jails", "a", "jail.key")); string(b) != "first\ntok-a\ncr\r\n" {
		t.Errorf("jail.key now holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "secret")); string(b) != "s" {
		t.Errorf("secret now holds %q", b)
	}
}

// TestMaxSessionsPerIP: the per-address limit refuses with a clear message and
// admits again once a session has ended.
func TestMaxSessionsPerIP(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.MaxSessionsPerIP = 2 })
	first := srv.Dial(t)
	srv.Dial(t)
	_, err := client.Dial(servertest.Context(t), srv.Addr, srv.Options())
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeMemory || fe.Text != "Too many sessions from your address, try again later." {
		t.Fatalf("third session: %v", err)
	}
	first.Close()
	// The server notices the END asynchronously: retry until admitted.
	ctx := servertest.Context(t)
	for {
		c, err := client.Dial(ctx, srv.Addr, srv.Options())
		if err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never admitted again after a session ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// snapshot lists every name under dir with its size, mode and mtime.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(p + " " + strconv.FormatInt(info.Size(), 10) + " " + info.Mode().String() + " " + info.ModTime().String() + "\n")
		return nil
	})
	return b.String()
}

// TestNothingChangesBeforeAuthentication (WIRE.md §9 items 1–3): failed
// handshakes, the reference's FAI:// token path trick, and every file command
// before LOGIN leave the data directory and its surroundings untouched.
func TestNothingChangesBeforeAuthentication(t *testing.T) {
	a := authtest.NewUser(t)
	srv := startMulti(t, userDB(t, a+" pw"))
	parent := filepath.Dir(srv.Root)
	writeFile(t, filepath.Join(srv.Root, "victim"), "v", 0o644)
	writeFile(t, filepath.Join(srv.Root, "dir", "f"), "v", 0o644)
	writeFile(t, filepath.Join(parent, "outside-victim"), "v", 0o644)
	before := snapshot(t, parent)

	for _, ver := range []string{"FAI://../outside-victim", "FAI://victim", "FAI://../../" + filepath.Base(parent) + "/outside-victim"} {
		c := srv.DialRaw(t)
		c.WriteFrameString(ver)
		if b, _ := c.ReadFrame(0); string(b) != "FAILED 2 : Incompatible protocol." {
			t.Errorf("%s: %q", ver, b)
		}
		servertest.ExpectClosed(t, c)
	}
	opts := srv.Options()
	opts.Hash = "wrong"
	if _, err := client.Dial(servertest.Context(t), srv.Addr, opts); failedCode(err) != tfproto.CodeInvalidHash {
		t.Fatalf("wrong hash: %v", err)
	}
	c := srv.DialHandshake(t)
	for _, cmd := range []string{
		"MKDIR new", "TOUCH new", "DEL victim", "RMDIR dir", "XDEL victim", "XRMDIR dir", "RENAM victim | moved",
		"COPY victim | copy", "CPDIR dir | dir2", "SNDFILE 0 new", "RCVFILE victim", "LOCK victim", "PUT new x",
		"SUP new", "RMSECDIR t | dir", "INJAIL t | dir", "CHMOD victim 000", "CHOWN victim root root", "FSTAT victim",
		"LS ", "SHA256 victim", "NIGMA 16", "FREESP", "DATE",
	} {
		if got := servertest.Command(t, c, cmd); got != f38 {
			t.Errorf("%q before LOGIN: %q", cmd, got)
		}
	}
	if after := snapshot(t, parent); after != before {
		t.Errorf("files changed before authentication:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRSABodyMustBe256 (WIRE.md §9 item 1): the session-key body must be
// exactly 256 bytes; any other length, up to the largest frame, is answered
// FAILED 25 and the connection closed, and a longer frame closes it at once.
func TestRSABodyMustBe256(t *testing.T) {
	srv := servertest.Start(t)
	for _, n := range []int{0, 1, 128, 255, 257, 512, 4096, tfproto.MaxFrame} {
		c := srv.DialRaw(t)
		c.WriteFrameString(srv.Config.Proto)
		if b, err := c.ReadFrame(0); err != nil || string(b) != "OK" {
			t.Fatalf("version: %q %v", b, err)
		}
		if err := c.WriteFrame(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if b, err := c.ReadFrame(0); err != nil || string(b) != "FAILED 25 : Bad public rsa encryption key." {
			t.Errorf("%d-byte key body: %q %v", n, b, err)
		}
		servertest.ExpectClosed(t, c)
	}
	c := srv.DialRaw(t)
	c.WriteFrameString(srv.Config.Proto)
	c.ReadFrame(0)
	c.WriteInt32(tfproto.MaxFrame + 1)
	servertest.ExpectClosed(t, c)
	if got, err := srv.Dial(t).Echo(servertest.Context(t), "alive"); err != nil || got != "alive" {
		t.Fatalf("after bad key bodies: %q %v", got, err)
	}
}

// BenchmarkEchoPersona compares a command round trip on a session that runs as
// the daemon's user with one locked to a persona thread (multi-user LOGIN):
// the cost of LockOSThread (each wake-up of a locked goroutine hands off
// between threads).
func BenchmarkEchoPersona(b *testing.B) {
	a := authtest.NewUser(b)
	run := func(b *testing.B, c *client.Client) {
		ctx := servertest.Context(b)
		for b.Loop() {
			if _, err := c.Echo(ctx, "x"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("daemon-user", func(b *testing.B) {
		run(b, servertest.Start(b).Dial(b))
	})
	b.Run("persona", func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "users")
		os.WriteFile(p, []byte(a+" pw\n"), 0o600)
		srv := servertest.Start(b, func(c *config.Config) { c.UserDB = p })
		c := srv.Dial(b)
		if err := c.Login(servertest.Context(b), a, "pw"); err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
}

// TestPersonaSessionLimit: sessions holding a persona thread are capped (each
// keeps an OS thread, and the runtime aborts past its thread limit); the refused
// client gets a clean answer, and a slot frees when a session ends.
func TestPersonaSessionLimit(t *testing.T) {
	a := authtest.NewUser(t)
	t.Cleanup(server.SetMaxPersonaSessions(1)) // restored after the servers stop
	multi := startMulti(t, userDB(t, a+" pw"))
	first := loginConn(t, multi, a, "pw")
	expect(t, multi.DialHandshake(t), []struct{ in, want string }{{"LOGIN " + a + " pw", f37}})
	first.WriteFrameString("END")
	servertest.ExpectClosed(t, first)
	ctx := servertest.Context(t)
	for {
		c := multi.DialHandshake(t)
		if got := servertest.Command(t, c, "LOGIN "+a+" pw"); got == "OK" {
			c.WriteFrameString("END")
			servertest.ExpectClosed(t, c)
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the persona slot was never freed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	single := servertest.Start(t, func(c *config.Config) { c.DefUser = a })
	srv1 := single.Dial(t)
	_, err := client.Dial(servertest.Context(t), single.Addr, single.Options())
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeMemory || !strings.Contains(fe.Text, "Too many sessions") {
		t.Fatalf("second single-user session: %v", err)
	}
	if _, err := srv1.Echo(ctx, "still"); err != nil {
		t.Fatal(err)
	}
}

// TestPersonaFileAccess: two logged-in users over the transfer commands. Files
// a user uploads are owned by that user on disk; B's 0600 file can be read
// (SHA256, SDOWN) by B and not by A; A cannot replace it; KEEPALIVE runs
// before LOGIN.
func TestPersonaFileAccess(t *testing.T) {
	a, b := authtest.NewUser(t), authtest.NewUser(t)
	srv := startMulti(t, userDB(t, a+" "+hashOf(t, "apw"), b+" bpw"))
	ctx := servertest.Context(t)
	login := func(name, pw string) *client.Client {
		c := srv.Dial(t)
		if err := c.Keepalive(ctx, true, 60*time.Second, 10*time.Second, 3); err != nil {
			t.Fatalf("KEEPALIVE before LOGIN: %v", err)
		}
		if err := c.Login(ctx, name, pw); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb := login(a, "apw"), login(b, "bpw")
	pa, _ := auth.LookupPersona(a)
	pb, _ := auth.LookupPersona(b)

	if _, err := ca.SendFile(ctx, "a-upload", strings.NewReader("from A"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.SendFile(ctx, "b-secret", strings.NewReader("only B"), false); err != nil {
		t.Fatal(err)
	}
	if err := cb.Chmod(ctx, "b-secret", 0o600); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*auth.Persona{"a-upload": pa, "b-secret": pb} {
		st := statOf(t, filepath.Join(srv.Root, name))
		if int(st.Uid) != p.UID || int(st.Gid) != p.GID {
			t.Errorf("%s is owned by %d:%d, want %s's %d:%d", name, st.Uid, st.Gid, p.Name, p.UID, p.GID)
		}
	}
	if m := statOf(t, filepath.Join(srv.Root, "b-secret")).Mode & 0o777; m != 0o600 {
		t.Fatalf("b-secret mode %o", m)
	}

	// B reads its file; A cannot.
	if _, err := cb.SHA256(ctx, "b-secret"); err != nil {
		t.Errorf("B SHA256 of its own file: %v", err)
	}
	var got strings.Builder
	if _, err := cb.Download(ctx, "b-secret", &got); err != nil || got.String() != "only B" {
		t.Errorf("B SDOWN of its own file: %q %v", got.String(), err)
	}
	if _, err := ca.SHA256(ctx, "b-secret"); failedCode(err) != tfproto.CodeSHA256 {
		t.Errorf("A SHA256 of B's 0600 file: %v, want FAILED 45", err)
	}
	var leak strings.Builder
	if _, err := ca.Download(ctx, "b-secret", &leak); err == nil || leak.Len() != 0 {
		t.Errorf("A SDOWN of B's 0600 file: %q %v", leak.String(), err)
	}
	// A cannot replace B's file (sticky root: only the owner may), nor change it.
	if _, err := ca.SendFile(ctx, "b-secret", strings.NewReader("overwritten by A"), true); err == nil {
		t.Error("A overwrote B's file")
	}
	if err := ca.Chmod(ctx, "b-secret", 0o666); failedCode(err) != tfproto.CodeChmod {
		t.Errorf("A CHMOD of B's file: %v", err)
	}
	if err := ca.Chown(ctx, "a-upload", b, b); failedCode(err) != tfproto.CodeChown {
		t.Errorf("A giving a file to B: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(srv.Root, "b-secret")); string(b) != "only B" {
		t.Errorf("b-secret now holds %q", b)
	}
	ents, _ := os.ReadDir(srv.Root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tfd-staging") {
			t.Errorf("the refused upload left %s behind", e.Name())
		}
	}
	// With the file commands: A can neither read nor delete B's 0600 file.
	var stolen strings.Builder
	if _, err := ca.ReceiveFile(ctx, "b-secret", &stolen, false); err == nil || stolen.Len() != 0 {
		t.Errorf("A RCVFILE of B's 0600 file: %q %v", stolen.String(), err)
	}
	if err := ca.Delete(ctx, "b-secret"); err == nil {
		t.Error("A deleted B's file")
	}
	if err := ca.Rename(ctx, "b-secret", "taken"); err == nil {
		t.Error("A renamed B's file")
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "b-secret")); err != nil {
		t.Fatalf("B's file is gone: %v", err)
	}
	// Directories and files A makes are A's; B cannot write into A's 0755 one.
	if err := ca.Mkdir(ctx, "a-dir"); err != nil {
		t.Fatal(err)
	}
	if err := ca.Touch(ctx, "a-dir/touched"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a-dir", "a-dir/touched"} {
		if st := statOf(t, filepath.Join(srv.Root, name)); int(st.Uid) != pa.UID || int(st.Gid) != pa.GID {
			t.Errorf("%s owned by %d:%d, want A's %d:%d", name, st.Uid, st.Gid, pa.UID, pa.GID)
		}
	}
	if err := ca.Chmod(ctx, "a-dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cb.Touch(ctx, "a-dir/from-b"); err == nil {
		t.Error("B created a file in A's 0755 directory")
	}
	if err := cb.Delete(ctx, "a-dir/touched"); err == nil {
		t.Error("B deleted a file in A's 0755 directory")
	}
	// B reads and deletes its own file.
	var mine strings.Builder
	if _, err := cb.ReceiveFile(ctx, "b-secret", &mine, false); err != nil || mine.String() != "only B" {
		t.Errorf("B RCVFILE of its own file: %q %v", mine.String(), err)
	}
	if err := cb.Copy(ctx, "b-secret", "b-copy"); err != nil {
		t.Fatal(err)
	}
	if err := cb.Delete(ctx, "b-copy"); err != nil {
		t.Errorf("B DEL of its own file: %v", err)
	}
	// B makes it readable: now A can read it.
	if err := cb.Chmod(ctx, "b-secret", 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SHA256(ctx, "b-secret"); err != nil {
		t.Errorf("A SHA256 of B's file after CHMOD 644: %v", err)
	}
}

// TestJailWithFileCommands: inside a jail, the file commands can neither reach
// the jail's key (read, list, copy out, rename, replace, delete, even through
// recursive commands on the jail root) nor leave the jail through "..",
// absolute paths or symlinks; nothing outside changes.
func TestJailWithFileCommands(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.InJail = true; c.LoginFailDelay = time.Millisecond })
	root := srv.Root
	jail := filepath.Join(root, "jails", "a")
	const key = "tok\n"
	writeFile(t, filepath.Join(root, "secret"), "s", 0o644)
	writeFile(t, filepath.Join(root, "outdir", "x"), "x", 0o644)
	writeFile(t, filepath.Join(jail, "jail.key"), key, 0o644)
	writeFile(t, filepath.Join(jail, "f"), "f", 0o644)
	writeFile(t, filepath.Join(jail, "sub", "jail.key"), "nested\n", 0o644)
	os.Symlink("../../secret", filepath.Join(jail, "up"))
	os.Symlink("../../outdir", filepath.Join(jail, "updir"))
	os.Symlink("/etc", filepath.Join(jail, "etc"))
	outside := snapshot(t, filepath.Join(root, "outdir")) + snapshot(t, filepath.Join(root, "secret"))

	cl := srv.Dial(t)
	ctx := servertest.Context(t)
	if err := cl.Injail(ctx, "tok", "jails/a"); err != nil {
		t.Fatal(err)
	}
	ls, err := cl.ListRaw(ctx, "/", false)
	if err != nil || strings.Contains(string(ls), "F: jail.key") || !strings.Contains(string(ls), "F: f\n") {
		t.Errorf("LS / in the jail: %q %v", ls, err)
	}
	lsr, err := cl.ListRaw(ctx, "", true)
	if err != nil || strings.Contains(string(lsr), "F: jail.key") || !strings.Contains(string(lsr), "F: sub/jail.key") {
		t.Errorf("LSR in the jail: %q %v", lsr, err)
	}
	var got strings.Builder
	if _, err := cl.ReceiveFile(ctx, "jail.key", &got, false); failedCode(err) != tfproto.CodeAccessDenied || got.Len() != 0 {
		t.Errorf("RCVFILE jail.key: %q %v", got.String(), err)
	}
	c := srv.DialHandshake(t)
	expect(t, c, []struct{ in, want string }{
		{"INJAIL tok | jails/a", "OK"},
		{"FSTAT jail.key", f1},
		{"DEL jail.key", f1},
		{"DEL /JAIL.KEY", f1},
		{"TOUCH jail.key", f1},
		{"MKDIR jail.key", f1},
		{"RENAM jail.key | stolen", f1},
		{"RENAM f | jail.key", f1},
		{"COPY jail.key | stolen", f1},
		{"COPY f | jail.key", f1},
		{"CPDIR / | copy", "OK"},
		{"XCOPY jail.key f | /", "OK"}, // skipped: the key is never a target
		{"XDEL / jail.key", "OK"},      // the root's key is never matched
		{"RMSECDIR jail.key | ", "FAILED 47 : Failed removing secure directory."},
		// Escapes.
		{"FSTAT ../../secret", f1},
		{"DEL ../../secret", f1},
		{"RMDIR ..", f1},
		{"RMDIR updir", f1},
		{"DEL up", f1},
		{"COPY updir/x | got", f1},
		{"COPY etc/passwd | got", f1},
		{"CPDIR updir | got", f1},
		{"RENAM f | ../f", f1},
		{"MKDIR ../newdir", f1},
		{"XDEL updir x", f1},
		{"XDEL / secret", "OK"},
	})
	if _, err := os.Stat(filepath.Join(jail, "copy", "f")); err != nil {
		t.Errorf("CPDIR / did not copy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jail, "copy", "jail.key")); err == nil {
		t.Error("CPDIR copied the jail's key out")
	}
	// RMDIR / deletes the jail's content, never its key.
	expect(t, c, []struct{ in, want string }{{"RMDIR /", "FAILED 15 : Directory to remove still exist."}})
	for _, tt := range []string{"LS ..", "LS ../..", "LS updir", "LS etc", "LSR ../"} {
		if got := servertest.Command(t, c, tt); got != f1 && got != "FAILED 10 : Directory does not exist." {
			t.Errorf("%q: %q", tt, got)
		}
	}
	if b, err := os.ReadFile(filepath.Join(jail, "jail.key")); err != nil || string(b) != key {
		t.Errorf("jail.key after the attacks: %q %v", b, err)
	}
	ents, _ := os.ReadDir(jail)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("RMDIR / left %v in the jail, want only jail.key", names)
	}
	if now := snapshot(t, filepath.Join(root, "outdir")) + snapshot(t, filepath.Join(root, "secret")); now != outside {
		t.Errorf("files outside the jail changed:\n%s\n%s", outside, now)
	}
}

// TestJailKeyNeverNotified: notification mode, which lets the client delete
// the files it is told about, never offers the jail's key.
func TestJailKeyNeverNotified(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.InJail = true })
	jail := filepath.Join(srv.Root, "j")
	writeFile(t, filepath.Join(jail, "jail.key"), "tok\n", 0o644)
	cl := srv.Dial(t)
	ctx := servertest.Context(t)
	if err := cl.Injail(ctx, "tok", "j"); err != nil {
		t.Fatal(err)
	}
	if err := cl.AddNotify(ctx, "", "/"); err != nil {
		t.Fatal(err)
	}
	if err := cl.AddNotify(ctx, "jail", ""); err != nil {
		t.Fatal(err)
	}
	st, err := cl.StartNotify(ctx, "0.01")
	if err != nil {
		t.Fatal(err)
	}
	// The key is there from the first sweep on; the first file offered must
	// still be the one written now.
	writeFile(t, filepath.Join(jail, "later"), "x", 0o644)
	n, err := st.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "later" {
		t.Fatalf("notified %+v, want later", n)
	}
	if err := st.Answer(ctx, client.Delete); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(jail, "again"), "x", 0o644)
	if n, err := st.Next(ctx); err != nil || n.Name != "again" {
		t.Fatalf("second notification %+v %v", n, err)
	}
	st.Answer(ctx, client.End)
	if b, err := os.ReadFile(filepath.Join(jail, "jail.key")); err != nil || string(b) != "tok\n" {
		t.Fatalf("jail.key: %q %v", b, err)
	}
}
