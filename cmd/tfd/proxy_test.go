package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
)

func TestProxyUpstream(t *testing.T) {
	tests := []struct {
		name, to string
		cfg      config.Config
		want     string
		wantErr  string
	}{
		{name: "to wins", to: "10.0.0.9:7", cfg: config.Config{TRPIPv4: "10.0.0.1", Port: 10345}, want: "10.0.0.9:7"},
		{name: "to without port takes the config port", to: "::1", cfg: config.Config{Port: 10345}, want: "[::1]:10345"},
		{name: "to without any port", to: "host", wantErr: "want HOST:PORT"},
		{name: "trp_ipv4", cfg: config.Config{TRPIPv4: "10.0.0.1", Port: 10345}, want: "10.0.0.1:10345"},
		{name: "trp_ipv6", cfg: config.Config{TRPIPv6: "fd00::1", Port: 10345}, want: "[fd00::1]:10345"},
		{name: "trp_dns", cfg: config.Config{TRPDNS: "tf.example", Port: 1}, want: "tf.example:1"},
		{name: "trp_ipv4 not IPv4", cfg: config.Config{TRPIPv4: "::1", Port: 1}, wantErr: "not an IPv4 address"},
		{name: "trp_ipv6 not IPv6", cfg: config.Config{TRPIPv6: "1.2.3.4", Port: 1}, wantErr: "not an IPv6 address"},
		{name: "trp_ipv4 garbage", cfg: config.Config{TRPIPv4: "host", Port: 1}, wantErr: "not an IPv4 address"},
		{name: "two trp keys", cfg: config.Config{TRPIPv4: "1.2.3.4", TRPDNS: "x", Port: 1}, wantErr: "keep one"},
		{name: "trp without port", cfg: config.Config{TRPDNS: "x"}, wantErr: "no port"},
		{name: "nothing", wantErr: "no upstream"},
		{name: "to with a bad host", to: "a b:1", wantErr: "not an IP address or a DNS name"},
		{name: "to with a bracket only", to: "]", cfg: config.Config{Port: 1}, wantErr: "not an IP address or a DNS name"},
		{name: "to with a bad port", to: "h:70000", wantErr: "not 1–65535"},
		{name: "to with a named port", to: "h:http", wantErr: "not 1–65535"},
		{name: "trp_dns garbage", cfg: config.Config{TRPDNS: "x/y", Port: 1}, wantErr: "not an IP address or a DNS name"},
		{name: "negative port", cfg: config.Config{TRPDNS: "x", Port: -1}, wantErr: "not 1–65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proxyUpstream(tt.to, &tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// runVia starts tfd proxy with args and returns its TCP address.
func runVia(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runProxy(ctx, args, func(tcp, udp, upstream string) { ready <- tcp })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runProxy: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("runProxy: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start")
	}
	return ""
}

func echoVia(t *testing.T, srv *servertest.Server, addr string) {
	t.Helper()
	ctx := servertest.Context(t)
	c, err := client.Dial(ctx, addr, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Echo(ctx, "through tfd proxy"); err != nil || got != "through tfd proxy" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

func TestProxyCommandWithTo(t *testing.T) {
	srv := servertest.Start(t)
	addr := runVia(t, "--listen", "127.0.0.1:0", "--to", srv.Direct, "--log-level", "error")
	echoVia(t, srv, addr)
}

func TestProxyCommandWithConfig(t *testing.T) {
	srv := servertest.Start(t)
	_, port, _ := strings.Cut(srv.Direct, ":")
	conf := filepath.Join(t.TempDir(), "proxy.conf")
	if err := os.WriteFile(conf, []byte("# proxy\nport "+port+"\ntrp_ipv4 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := runVia(t, "--config", conf, "--listen", "127.0.0.1:0", "--no-udp", "--log-level", "error")
	echoVia(t, srv, addr)
}

func TestProxyCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "127.0.0.1:0"},                       // no upstream
		{"--to", "127.0.0.1:1", "--listen", "bad:addr:x"}, // bad listen
		{"--to", "127.0.0.1:1", "extra"},
		{"--config", filepath.Join(t.TempDir(), "missing")},
	} {
		if err := runProxy(context.Background(), append(args, "--log-level", "error"), nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func FuzzProxyUpstream(f *testing.F) {
	f.Add("", "10.0.0.1", "", "", 10345)
	f.Add("::1", "", "", "", 1)
	f.Add("", "", "fd00::1", "", 0)
	f.Add("", "", "", "tf.example", 65535)
	f.Fuzz(func(t *testing.T, to, v4, v6, dns string, port int) {
		cfg := config.Config{TRPIPv4: v4, TRPIPv6: v6, TRPDNS: dns, Port: port}
		up, err := proxyUpstream(to, &cfg)
		if err != nil {
			return
		}
		h, p, err := net.SplitHostPort(up)
		if err != nil || checkHostPort(h, p) != nil {
			t.Fatalf("upstream %q accepted: %v", up, err)
		}
	})
}
