package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/config"
)

// TestEmbeddedDefault: with no flags, tfd makes the key pair and the data root
// under --data and serves the defaults; a second start reuses the same keys.
func TestEmbeddedDefault(t *testing.T) {
	data := filepath.Join(t.TempDir(), "tfdata")
	load := func(args ...string) *config.Config {
		var f serveFlags
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f.register(fs)
		if err := fs.Parse(append([]string{"--data", data}, args...)); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		cfg, pub, err := loadConfig(&f, fs)
		if err != nil {
			t.Fatal(err)
		}
		if pub != filepath.Join(data, "keys", "public.pem") {
			t.Fatalf("public key path %q", pub)
		}
		return cfg
	}
	cfg := load()
	if cfg.ListenAddr() != "127.0.0.1:10345" || cfg.Proto != "0.0" || cfg.Hash != "testhash" || cfg.DBDir != filepath.Join(data, "root") || cfg.MultiUser() {
		t.Fatalf("defaults: %+v", cfg)
	}
	st, err := os.Stat(filepath.Join(data, "keys", "private.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st, err)
	}
	again := load()
	if !bytes.Equal(again.PrivKeyPEM, cfg.PrivKeyPEM) {
		t.Fatal("second start made a new key")
	}

	t.Setenv("TFD_HASH", "fromenv")
	t.Setenv("TFD_IDLE_TIMEOUT", "5s")
	c := load("--listen", "127.0.0.1:0")
	if c.Hash != "fromenv" || c.IdleTimeout != 5*time.Second || c.ListenAddr() != "127.0.0.1:0" {
		t.Fatalf("env/flag overrides: %q %v %q", c.Hash, c.IdleTimeout, c.ListenAddr())
	}
	c = load("--hash", "fromflag")
	if c.Hash != "fromflag" {
		t.Fatalf("flag must win over env: %q", c.Hash)
	}
}
