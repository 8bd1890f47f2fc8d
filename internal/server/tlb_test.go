package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/tfproto"
)

func tlbFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tlb")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLBRotatesPerConnection(t *testing.T) {
	pool := tlbFile(t, "4 10.0.0.1;10346\n6 ::1;10346\n  odd line, verbatim ;x\n")
	srv := servertest.Start(t, func(c *config.Config) { c.TLB = pool })
	ctx := servertest.Context(t)
	want := []string{"4 10.0.0.1;10346", "6 ::1;10346", "  odd line, verbatim ;x", "4 10.0.0.1;10346", "6 ::1;10346"}
	a := srv.Dial(t)
	for i := 0; i < 2; i++ {
		if got, err := a.TLB(ctx); err != nil || got != want[i] {
			t.Fatalf("conn a call %d: %q, %v; want %q", i, got, err, want[i])
		}
	}
	// A new connection starts at line 1 and is not moved by the first one.
	b := srv.Dial(t)
	for i, w := range want {
		if got, err := b.TLB(ctx); err != nil || got != w {
			t.Fatalf("conn b call %d: %q, %v; want %q", i, got, err, w)
		}
	}
	if got, err := a.TLB(ctx); err != nil || got != want[2] {
		t.Fatalf("conn a call 2: %q, %v; want %q", got, err, want[2])
	}
}

func TestTLBReadmeSyntaxAndArgs(t *testing.T) {
	pool := tlbFile(t, "ipv4: 127.0.0.1\r\nipv6: ::1\r\n")
	srv := servertest.Start(t, func(c *config.Config) { c.TLB = pool; c.Port = 10346 })
	raw := srv.DialHandshake(t)
	// Raw replies: arguments are ignored, the name is case-insensitive.
	for _, tc := range []struct{ cmd, want string }{
		{"TLB", "OK 4 127.0.0.1;10346"},
		{"tlb ignored args", "OK 6 ::1;10346"},
		{"TLB ", "OK 4 127.0.0.1;10346"},
	} {
		if got := servertest.Command(t, raw, tc.cmd); got != tc.want {
			t.Fatalf("%q: %q want %q", tc.cmd, got, tc.want)
		}
	}
}

func TestTLBFailed52(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*config.Config)
	}{
		{"no tlb configured", func(*config.Config) {}},
		{"missing file", func(c *config.Config) { c.TLB = filepath.Join(dir, "missing") }},
		{"empty file", func(c *config.Config) { c.TLB = empty }},
		{"only blank lines", func(c *config.Config) { c.TLB = tlbFile(t, "\n\n \n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.Start(t, tt.change)
			raw := srv.DialHandshake(t)
			if got := servertest.Command(t, raw, "TLB"); got != tfproto.CodeTLB.Line() {
				t.Fatalf("got %q want %q", got, tfproto.CodeTLB.Line())
			}
			_, err := srv.Dial(t).TLB(servertest.Context(t))
			var fe *tfproto.Error
			if !errors.As(err, &fe) || fe.Code != tfproto.CodeTLB {
				t.Fatalf("client: %v", err)
			}
			// The session goes on.
			if got := servertest.Command(t, raw, "ECHO x"); got != "x" {
				t.Fatalf("after FAILED 52: %q", got)
			}
		})
	}
}

func TestTLBReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tlb")
	srv := servertest.Start(t, func(c *config.Config) { c.TLB = path })
	ctx := servertest.Context(t)
	c := srv.Dial(t)
	if _, err := c.TLB(ctx); err == nil {
		t.Fatal("TLB before the file exists succeeded")
	}
	if err := os.WriteFile(path, []byte("4 10.9.9.9;1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Srv.ReloadTLB(); err != nil || n != 1 {
		t.Fatalf("ReloadTLB = %d, %v", n, err)
	}
	if got, err := c.TLB(ctx); err != nil || got != "4 10.9.9.9;1" {
		t.Fatalf("after reload: %q, %v", got, err)
	}
}

// staticPool is a pool given with WithTLBPool (what the cluster plugs in).
type staticPool struct{ tuple string }

func (p staticPool) NewPicker() tlb.Picker { return p }
func (p staticPool) Next() (string, error) {
	if p.tuple == "" {
		return "", tlb.ErrEmpty
	}
	return p.tuple, nil
}

func TestTLBPoolOptionWins(t *testing.T) {
	file := tlbFile(t, "4 from.file;1\n")
	srv := servertest.StartOpts(t, []server.Option{server.WithTLBPool(staticPool{"6 cluster;2"})},
		func(c *config.Config) { c.TLB = file })
	if got, err := srv.Dial(t).TLB(servertest.Context(t)); err != nil || got != "6 cluster;2" {
		t.Fatalf("%q, %v", got, err)
	}
	if _, ok := srv.Srv.TLBPool().(staticPool); !ok {
		t.Fatalf("TLBPool() = %T", srv.Srv.TLBPool())
	}
	if n, err := srv.Srv.ReloadTLB(); n != 0 || err != nil {
		t.Fatalf("ReloadTLB on a non-file pool = %d, %v", n, err)
	}
}
