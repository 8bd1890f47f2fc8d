// Package servertest starts real tfd servers on 127.0.0.1:0 for tests, and dials
// them with the real Go client over TCP.
package servertest

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/auth"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/proxy"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/tfproto"
)

// Test binaries that start servers keep their main goroutine on the main
// thread, as cmd/tfd does, so that no session goroutine with a persona (multi-
// or single-user mode) is ever scheduled on the process's main thread.
func init() { auth.LockMainThread() }

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// Key returns an RSA-2048 key made once per test process.
func Key(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() { key, keyErr = tfproto.GenerateKey() })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return key
}

// Server is a running test server.
type Server struct {
	// Addr is the TCP address, "127.0.0.1:port": the server's, or with
	// TFD_TEST_VIA_PROXY=1 the transparent proxy's in front of it (UDP on the
	// same port number is relayed too).
	Addr string
	// Direct is the server's own address (Addr without a proxy).
	Direct string
	// UDPAddr is the UDP services' address: the same port number as Addr
	// (the proxy's when TFD_TEST_VIA_PROXY=1).
	UDPAddr string
	// Root is the dbdir, a fresh temporary directory.
	Root string
	// Config is the server's configuration.
	Config *config.Config
	// Srv is the server itself.
	Srv *server.Server
	// PublicKeyPEM is the server's public key.
	PublicKeyPEM []byte

	cancel context.CancelFunc
	done   chan error
}

// Start runs a server on 127.0.0.1:0 (or the config's Listen address, when a
// change sets one) with a fresh dbdir, proto "0.0" and hash
// "testhash", after applying the given changes to its config. The server stops
// when the test ends.
func Start(t testing.TB, changes ...func(*config.Config)) *Server {
	t.Helper()
	return StartOpts(t, nil, changes...)
}

// StartOpts is Start with server options (a cluster bus or TLB pool).
func StartOpts(t testing.TB, opts []server.Option, changes ...func(*config.Config)) *Server {
	t.Helper()
	k := Key(t)
	cfg := config.Default()
	cfg.DBDir = filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(cfg.DBDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.PrivKeyPEM = tfproto.MarshalPrivateKeyPEM(k)
	pub, err := tfproto.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PubKeyPEM = pub
	cfg.ShutdownTimeout = 2 * time.Second
	for _, ch := range changes {
		ch(cfg)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	host := "127.0.0.1"
	if cfg.Listen != "" {
		h, _, err := net.SplitHostPort(cfg.Listen) // e.g. "[::1]:0" for IPv6 tests
		if err != nil {
			t.Fatal(err)
		}
		host = h
	}
	ln, pc := listenTCPUDP(t, host)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Addr: ln.Addr().String(), Direct: ln.Addr().String(), UDPAddr: pc.LocalAddr().String(), Root: cfg.DBDir, Config: cfg, Srv: srv, PublicKeyPEM: pub, cancel: cancel, done: make(chan error, 2)}
	go func() { s.done <- srv.Serve(ctx, ln) }()
	go func() { s.done <- srv.ServeUDP(ctx, pc) }()
	t.Cleanup(s.Stop)
	if ViaProxy() {
		s.Addr, _ = StartProxy(t, s.Direct)
		s.UDPAddr = s.Addr
	}
	return s
}

// ViaProxy reports whether the environment (TFD_TEST_VIA_PROXY=1) asks for
// every test server to be reached through a transparent proxy, so the whole
// integration suite checks that the proxy is invisible.
func ViaProxy() bool { return os.Getenv("TFD_TEST_VIA_PROXY") == "1" }

// StartProxy runs a transparent proxy to upstream on 127.0.0.1, TCP and UDP on
// one port number, until the test ends, and returns its address.
func StartProxy(t testing.TB, upstream string, changes ...func(*proxy.Config)) (string, *proxy.Proxy) {
	t.Helper()
	cfg := proxy.Config{Upstream: upstream, ShutdownTimeout: 2 * time.Second}
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, ch := range changes {
		ch(&cfg)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, pc := listenTCPUDP(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	return ln.Addr().String(), p
}

// listenTCPUDP listens on host:0 for TCP and on the same port for UDP.
func listenTCPUDP(t testing.TB, host string) (net.Listener, net.PacketConn) {
	t.Helper()
	var last error
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc
		}
		ln.Close()
		last = err
	}
	t.Fatalf("no port free for both TCP and UDP: %v", last)
	return nil, nil
}

// Stop shuts the server down and waits for it. It is safe to call twice.
func (s *Server) Stop() {
	s.cancel()
	if s.done != nil {
		<-s.done
		<-s.done
		s.done = nil
	}
}

// Options returns client options for this server.
func (s *Server) Options() client.Options {
	return client.Options{Proto: s.Config.Proto, Hash: s.Config.Hash, PublicKeyPEM: s.PublicKeyPEM}
}

// Dial connects a client and closes it when the test ends.
func (s *Server) Dial(t testing.TB) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.Addr, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Context returns a context for one test step, cancelled when the test ends or
// after two minutes: generous, because a 64 MiB transfer under -race on a
// loaded two-core machine takes half a minute; a hang still fails the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// DialRaw opens a TCP connection to the server without any handshake, for tests
// that send hand-made bytes. It is closed when the test ends.
func (s *Server) DialRaw(t testing.TB) *tfproto.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return tfproto.NewConn(nc)
}

// DialHandshake opens a connection and completes the handshake with a fresh
// 32-byte session key, returning the enciphered Conn for raw protocol tests.
func (s *Server) DialHandshake(t testing.TB) *tfproto.Conn {
	t.Helper()
	c := s.DialRaw(t)
	key, err := tfproto.NewSessionKey(nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	if err := tfproto.ClientHandshake(c, s.Config.Proto, s.Config.Hash, &Key(t).PublicKey, key); err != nil {
		t.Fatal(err)
	}
	return c
}

// Command sends one framed command on a handshaken raw Conn and returns the
// framed reply body as a string.
func Command(t testing.TB, c *tfproto.Conn, line string) string {
	t.Helper()
	if err := c.WriteFrameString(line); err != nil {
		t.Fatalf("send %q: %v", line, err)
	}
	body, err := c.ReadFrame(0)
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	return string(body)
}

// ExpectClosed fails the test unless the server closes c (EOF or reset) within
// the connection's deadline, after any bytes already in flight.
func ExpectClosed(t testing.TB, c *tfproto.Conn) {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		_, err := c.NetConn().Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server did not close the connection")
			}
			return
		}
	}
}
