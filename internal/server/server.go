// Package server is the tfd daemon: the TCP listener and accept loop, the
// per-connection session (handshake, then the command loop), the dispatcher that
// maps command names to handlers, and the limits and timeouts around them.
//
// One goroutine serves one session. Handlers are grouped by family in files
// (cmd_core.go, fs_*.go, transfer.go, hpfi.go, …); each family contributes a
// command table and, where it needs them, per-server and per-session state and
// lifecycle hooks (see family.go).
package server

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/gateway"
	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/notify"
	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// Server serves TFProtocol sessions.
type Server struct {
	// cfg is the configuration the server started with; read the one in
	// force with Config() (Reload replaces it).
	cfg      *config.Config
	live     atomic.Pointer[config.Config]
	reloadMu sync.Mutex
	priv     *rsa.PrivateKey
	log      *slog.Logger

	mu       sync.Mutex
	sessions map[*session]struct{}
	ln       net.Listener
	closing  bool
	wg       sync.WaitGroup
	nextID   atomic.Uint64
	active   atomic.Int64

	// The relay fabric and the TLB pool: single-node implementations by
	// default, replaced by the cluster's through Options.
	bus     gateway.Bus
	tlbPool tlb.Pool

	// chk is the netcheck family's state: process keys, OOB watcher, UDP.
	chk netcheckServer
	// ntfy is the notification family's inotify hub, shared by its sessions.
	ntfy *notify.Hub
	// rootFS is the dbdir's jail, one descriptor shared by every session that
	// has not INJAILed (os.Root is safe for concurrent use); sessions never
	// close it.
	rootFS *vfs.FS
	// metrics is nil when metrics are off (its methods are nil-safe).
	metrics *metrics.Metrics
	// auth is the auth family's state (cmd_auth.go).
	auth authServer

	// gw is the gateway family's state (gateway.go).
	gw gatewayServer
}

// WithMetrics makes the server record Prometheus metrics into m.
func WithMetrics(m *metrics.Metrics) Option { return func(s *Server) { s.metrics = m } }

// Metrics returns the server's metrics (nil when off).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Option changes how a Server is built.
type Option func(*Server)

// WithBus makes the gateway deliver through b (the cluster's NATS bus) instead
// of the in-process bus.
func WithBus(b gateway.Bus) Option { return func(s *Server) { s.bus = b } }

// WithTLBPool makes TLB and UDP_TLB answer from p (the cluster's least-loaded
// pool) instead of the configured tlb file.
func WithTLBPool(p tlb.Pool) Option { return func(s *Server) { s.tlbPool = p } }

// New checks cfg and returns a server ready to Serve. cfg.DBDir must exist and
// cfg.PrivKeyPEM must hold the RSA-2048 private key.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	priv, err := tfproto.ParsePrivateKeyPEM(cfg.PrivKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("server private key: %w", err)
	}
	if priv.N.BitLen() != 2048 {
		return nil, fmt.Errorf("server private key is %d bits; TFProtocol needs RSA-2048", priv.N.BitLen())
	}
	st, err := os.Stat(cfg.DBDir)
	if err != nil {
		return nil, fmt.Errorf("dbdir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dbdir %s is not a directory", cfg.DBDir)
	}
	root, err := vfs.Open(cfg.DBDir)
	if err != nil {
		return nil, fmt.Errorf("dbdir: %w", err)
	}
	s := &Server{cfg: cfg, priv: priv, log: log, sessions: make(map[*session]struct{}), rootFS: root}
	s.live.Store(cfg)
	for _, o := range opts {
		o(s)
	}
	if err := s.startFamilies(); err != nil {
		root.Close()
		return nil, err // startFamilies stopped what it had started
	}
	return s, nil
}

// Bus returns the gateway's relay fabric (nil until the gateway family sets a
// default).
func (s *Server) Bus() gateway.Bus { return s.bus }

// TLBPool returns the pool TLB and UDP_TLB answer from (nil = empty).
func (s *Server) TLBPool() tlb.Pool { return s.tlbPool }

// Config returns the configuration in force: the one New got, or the last
// Reload's. It must not be modified.
func (s *Server) Config() *config.Config { return s.live.Load() }

// ActiveSessions returns the number of open sessions.
func (s *Server) ActiveSessions() int { return int(s.active.Load()) }

// Addr returns the listener's address once Serve has started, else nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ListenAndServe listens on the configured address and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts sessions on ln until ctx ends, then shuts down gracefully: it
// stops accepting, lets open sessions finish for up to cfg.ShutdownTimeout, then
// closes the rest. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errors.New("server: already shut down")
	}
	s.ln = ln
	s.mu.Unlock()
	s.log.Info("listening", "addr", ln.Addr().String(), "proto", s.cfg.Proto, "dbdir", s.cfg.DBDir)

	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.shutdown()
				return nil
			}
			if isTemporary(err) {
				// Back off like net/http: 5 ms doubling to 1 s.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept error; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			s.shutdown()
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		s.startSession(ctx, nc)
	}
}

func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	if errors.As(err, &ne) && ne.Temporary() {
		return true
	}
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errTooManyFiles())
}

func (s *Server) startSession(ctx context.Context, nc net.Conn) {
	id := s.nextID.Add(1)
	sess := newSession(s, nc, id)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
			s.active.Add(-1)
		}()
		sess.serve(ctx)
	}()
}

// shutdown waits for sessions up to the shutdown timeout, then closes the rest.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closing = true
	n := len(s.sessions)
	s.mu.Unlock()
	timeout := s.Config().ShutdownTimeout
	s.log.Info("shutting down", "sessions", n, "timeout", timeout)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.mu.Lock()
		for sess := range s.sessions {
			sess.nc.Close() // the session goroutine releases its buffers itself
		}
		s.mu.Unlock()
		<-done
	}
	s.stopFamilies()
	s.rootFS.Close()
	s.log.Info("stopped")
}
