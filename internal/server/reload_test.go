package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/auth/authtest"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// reloaded returns a copy of srv's configuration in force with f applied, as a
// fresh load of a changed config file would be.
func reloaded(srv *servertest.Server, f func(*config.Config)) *config.Config {
	c := *srv.Srv.Config()
	c.Warnings = nil
	f(&c)
	return &c
}

func dialErr(srv *servertest.Server) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Dial(ctx, srv.Addr, srv.Options())
}

// TestReloadLimits: a lowered session limit applies to new sessions while the
// existing session keeps working; raising it again admits new sessions.
func TestReloadLimits(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	a := srv.Dial(t)
	if _, err := a.Echo(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.MaxSessions = 1 })); err != nil {
		t.Fatal(err)
	}
	if got := srv.Srv.Config().MaxSessions; got != 1 {
		t.Fatalf("MaxSessions in force = %d, want 1", got)
	}
	_, err := dialErr(srv)
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeMemory {
		t.Fatalf("new session over the reloaded limit: %v, want FAILED %d", err, tfproto.CodeMemory)
	}
	if got, err := a.Echo(ctx, "still here"); err != nil || got != "still here" {
		t.Fatalf("existing session after reload: %q %v", got, err)
	}
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.MaxSessions = 0 })); err != nil {
		t.Fatal(err)
	}
	b, err := dialErr(srv)
	if err != nil {
		t.Fatalf("new session after lifting the limit: %v", err)
	}
	b.Close()
}

// TestReloadIdleTimeout: a new idle timeout closes a session that then waits
// longer than it, and an active session is unaffected by the reload itself.
func TestReloadIdleTimeout(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	a := srv.Dial(t)
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.IdleTimeout = 50 * time.Millisecond })); err != nil {
		t.Fatal(err)
	}
	// The session was already waiting with no deadline; its next command
	// works, and the wait after it has the new deadline.
	if _, err := a.Echo(ctx, "x"); err != nil {
		t.Fatalf("first command after reload: %v", err)
	}
	c := srv.DialHandshake(t)
	servertest.ExpectClosed(t, c) // idles past 50 ms and is closed
}

// TestReloadRestartOnly: settings that need a restart keep their running
// values; switching multi-user mode is refused; a family may refuse.
func TestReloadRestartOnly(t *testing.T) {
	srv := servertest.Start(t)
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.Hash = "otherhash"; c.MaxSessionsPerIP = 7 })); err != nil {
		t.Fatal(err)
	}
	if cfg := srv.Srv.Config(); cfg.Hash != "testhash" || cfg.MaxSessionsPerIP != 7 {
		t.Fatalf("after reload: hash %q (want the running testhash), per-IP %d (want 7)", cfg.Hash, cfg.MaxSessionsPerIP)
	}
	srv.Dial(t) // the running hash still works

	err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.UserDB = "/nonexistent/users"; c.MaxSessions = 3 }))
	if err == nil || !strings.Contains(err.Error(), "multi-user") {
		t.Fatalf("switch to multi-user: %v", err)
	}
	err = srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.HPFIMaxBuffer = server.ReloadRefused; c.MaxSessions = 3 }))
	if err == nil || !strings.Contains(err.Error(), "refused by the test family") {
		t.Fatalf("family refusal: %v", err)
	}
	if got := srv.Srv.Config().MaxSessions; got != 0 {
		t.Fatalf("a refused reload changed MaxSessions to %d", got)
	}
	def := srv.Srv.Config().HPFIMaxBuffer
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.HPFIMaxBuffer = 4096 })); err != nil {
		t.Fatal(err)
	}
	if got := server.ReloadCommits(srv.Srv); !slices.Equal(got, []int64{def, 4096}) {
		t.Fatalf("family commits %v, want [%d 4096]", got, def)
	}
	if err := srv.Srv.Reload(nil); err == nil {
		t.Fatal("Reload(nil) succeeded")
	}
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.IdleTimeout = -1 })); err == nil {
		t.Fatal("negative idle timeout accepted")
	}
}

// TestReloadConcurrent: reloads race with sessions running commands and
// connecting (run under -race).
func TestReloadConcurrent(t *testing.T) {
	srv := servertest.Start(t)
	ctx := servertest.Context(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		c := srv.Dial(t)
		wg.Go(func() {
			for range 100 {
				if _, err := c.Echo(ctx, "x"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			c, err := dialErr(srv)
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		}
	})
	for i := range 50 {
		if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.IdleTimeout = time.Duration(i+1) * time.Minute })); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReloadTLB: a reload re-reads the TLB pool file for new connections; an
// unreadable file refuses the reload and the running pool stays.
func TestReloadTLB(t *testing.T) {
	pool := filepath.Join(t.TempDir(), "tlb")
	os.WriteFile(pool, []byte("4 10.0.0.1;1\n"), 0o644)
	srv := servertest.Start(t, func(c *config.Config) { c.TLB = pool })
	ctx := servertest.Context(t)
	tuple := func() string {
		t.Helper()
		c := srv.Dial(t)
		s, err := c.TLB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := tuple(); got != "4 10.0.0.1;1" {
		t.Fatalf("TLB %q", got)
	}
	os.WriteFile(pool, []byte("6 ::2;2\n"), 0o644)
	if got := tuple(); got != "4 10.0.0.1;1" {
		t.Fatalf("TLB before reload %q: the file must be read at start and reload only", got)
	}
	if err := srv.Srv.Reload(reloaded(srv, func(*config.Config) {})); err != nil {
		t.Fatal(err)
	}
	if got := tuple(); got != "6 ::2;2" {
		t.Fatalf("TLB after reload %q", got)
	}
	os.Remove(pool)
	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.MaxSessions = 9 })); err == nil {
		t.Fatal("reload with the pool file gone succeeded")
	}
	if got := tuple(); got != "6 ::2;2" {
		t.Fatalf("TLB after a refused reload %q", got)
	}
	if srv.Srv.Config().MaxSessions != 0 {
		t.Fatal("a refused reload changed the limits")
	}
}

// TestReloadUserDB: after a reload that names a new user database, a user only
// in the new one can log in while a session logged in before keeps working; a
// user database that does not load refuses the reload.
func TestReloadUserDB(t *testing.T) {
	a, b := authtest.NewUser(t), authtest.NewUser(t)
	dbA := userDB(t, a+" "+hashOf(t, "pwa"))
	dbB := userDB(t, a+" "+hashOf(t, "pwa"), b+" "+hashOf(t, "pwb"))
	srv := startMulti(t, dbA)
	old := loginConn(t, srv, a, "pwa")
	expect(t, srv.DialHandshake(t), []struct{ in, want string }{{"LOGIN " + b + " pwb", f37}})

	if err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.UserDB = dbB; c.LoginFailDelay = 2 * time.Millisecond })); err != nil {
		t.Fatal(err)
	}
	if got := srv.Srv.Config(); got.UserDB != dbB || got.LoginFailDelay != 2*time.Millisecond {
		t.Fatalf("after reload: userdb %q, delay %v", got.UserDB, got.LoginFailDelay)
	}
	nb := loginConn(t, srv, b, "pwb")
	expect(t, nb, []struct{ in, want string }{{"ECHO new", "new"}})
	expect(t, old, []struct{ in, want string }{{"ECHO old", "old"}, {"MKDIR made-by-a", "OK"}})

	// A user database that does not load: refused, the running one stays.
	err := srv.Srv.Reload(reloaded(srv, func(c *config.Config) { c.UserDB = filepath.Join(t.TempDir(), "missing") }))
	if err == nil || !strings.Contains(err.Error(), "user database") {
		t.Fatalf("reload with a missing user database: %v", err)
	}
	if srv.Srv.Config().UserDB != dbB {
		t.Fatal("a refused reload changed the user database")
	}
	loginConn(t, srv, b, "pwb")
	expect(t, old, []struct{ in, want string }{{"ECHO still", "still"}})
}
