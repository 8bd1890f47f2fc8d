package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// TestSIGHUPReload: tfd serve's SIGHUP handler re-reads the config file; a
// lowered session limit then refuses a new session while the open one keeps
// working, and a broken file changes nothing.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	k := servertest.Key(t)
	conf := filepath.Join(dir, "tfd.conf")
	write := func(extra string) {
		text := fmt.Sprintf("proto 0.0\nhash testhash\ndbdir %s\n%sprivkey {%s}\n", root, extra, tfproto.MarshalPrivateKeyPEM(k))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse([]string{"--config", conf}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(&f, fs)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	reloads := make(chan error, 4)
	stop := reloadOnHUP(ctx, srv, slog.New(slog.DiscardHandler), func() (*config.Config, error) {
		c, _, err := loadConfig(&f, fs)
		return c, err
	}, reloads)
	defer func() { stop(); cancel(); <-served }()

	pub, _ := tfproto.MarshalPublicKeyPEM(&k.PublicKey)
	opts := client.Options{PublicKeyPEM: pub}
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	a, err := client.Dial(dctx, ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	hup := func() error {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-reloads:
			return err
		case <-dctx.Done():
			t.Fatal("no reload after SIGHUP")
		}
		return nil
	}
	write("nprocmax 1\n")
	if err := hup(); err != nil {
		t.Fatal(err)
	}
	if got := srv.Config().MaxSessions; got != 1 {
		t.Fatalf("MaxSessions after SIGHUP = %d", got)
	}
	_, err = client.Dial(dctx, ln.Addr().String(), opts)
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeMemory {
		t.Fatalf("new session over the reloaded limit: %v", err)
	}
	if s, err := a.Echo(dctx, "alive"); err != nil || s != "alive" {
		t.Fatalf("open session after SIGHUP: %q %v", s, err)
	}
	os.WriteFile(conf, []byte("privkey {unterminated\n"), 0o600)
	if err := hup(); err == nil {
		t.Fatal("a broken config file reloaded")
	}
	if got := srv.Config().MaxSessions; got != 1 {
		t.Fatalf("a failed reload changed MaxSessions to %d", got)
	}
}
