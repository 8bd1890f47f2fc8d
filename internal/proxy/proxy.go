// Package proxy is tfd's transparent proxy (TRP, "Transparent Proxy System" in
// the TFProtocol 2.4.1 spec): it relays TCP sessions and UDP datagrams to the
// real server without looking into them. Nothing is deciphered, so the two
// servers must share the key pair; a client cannot tell that it is proxied.
//
// TCP: one upstream connection per client connection, bytes relayed both ways
// with splice(2) through a pipe, so the payload never enters user space (the
// proxy drives splice itself rather than through io.Copy, to re-arm
// TCP_QUICKACK after every read and to get past urgent marks; see
// splice_linux.go and tcp.go), half-closes passed on, failures passed on as
// resets, and TCP urgent (out-of-band) bytes forwarded as urgent bytes, so the
// OOB keepalive and the SOCKCHECK counter work through the proxy. The client and upstream address
// families are independent: an IPv4 client reaches an IPv6 server and the other
// way round.
//
// UDP: a bounded table maps each client source address to its own connected
// upstream socket; every datagram the server sends back on it goes to that
// client. Idle entries expire, and when the table is full the least recently
// used entry makes room.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout     = 10 * time.Second // the reference's connect timeout
	DefaultUDPIdleTimeout  = 60 * time.Second
	DefaultMaxUDPSessions  = 4096
	DefaultShutdownTimeout = 10 * time.Second
)

// Config says where to relay to and the limits of a Proxy.
type Config struct {
	// Upstream is the real server, "host:port". host may be an IPv4 or IPv6
	// address or a DNS name, resolved again for every TCP connection and UDP
	// session (all addresses are tried for TCP, as net.Dialer does).
	Upstream string
	// DialTimeout bounds connecting to the upstream.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP session that saw no datagram either way for
	// this long.
	UDPIdleTimeout time.Duration
	// MaxUDPSessions bounds the UDP session table (one upstream socket each).
	MaxUDPSessions int
	// ShutdownTimeout is how long open TCP sessions may go on after the
	// context ends before they are cut.
	ShutdownTimeout time.Duration
	// NoOOB turns off forwarding of TCP urgent bytes (they are then dropped,
	// as any relay without OOB support would).
	NoOOB bool
	// Log receives the proxy's log lines; nil discards them.
	Log *slog.Logger
}

// Proxy relays TCP and UDP to one upstream server. Its methods are safe for
// concurrent use.
type Proxy struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	conns   map[*relay]struct{}
	closing bool
	wg      sync.WaitGroup

	activeTCP atomic.Int64
	totalTCP  atomic.Uint64
	oobFwd    atomic.Uint64
	udp       atomic.Pointer[udpTable]
	oob       *oobWatcher // nil with NoOOB
}

// New checks cfg and returns a proxy.
func New(cfg Config) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("proxy: upstream %q: %w", cfg.Upstream, err)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if cfg.MaxUDPSessions <= 0 {
		cfg.MaxUDPSessions = DefaultMaxUDPSessions
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg, log: log, conns: make(map[*relay]struct{})}, nil
}

// Stats is a snapshot of a proxy's counters.
type Stats struct {
	ActiveTCP   int    // TCP sessions being relayed
	TotalTCP    uint64 // TCP sessions accepted
	OOBBytes    uint64 // urgent bytes forwarded, both directions
	UDPSessions int    // entries in the UDP session table
	UDPEvicted  uint64 // UDP sessions ended to make room
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	st := Stats{ActiveTCP: int(p.activeTCP.Load()), TotalTCP: p.totalTCP.Load(), OOBBytes: p.oobFwd.Load()}
	if t := p.udp.Load(); t != nil {
		st.UDPSessions, st.UDPEvicted = t.stats()
	}
	return st
}

// ListenAndServe listens on addr for TCP and UDP (the same port number, as a
// TFProtocol server does) and serves until ctx ends.
func (p *Proxy) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy: listen tcp: %w", err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		return fmt.Errorf("proxy: listen udp: %w", err)
	}
	return p.Serve(ctx, ln, pc)
}

// Serve relays the TCP connections ln accepts and the datagrams pc receives
// (either may be nil) until ctx ends, then shuts down: it stops accepting,
// lets open TCP sessions run for up to ShutdownTimeout, cuts the rest, ends
// every UDP session and returns once every goroutine it started has ended. It
// returns nil after a shutdown caused by ctx.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, pc net.PacketConn) error {
	if ln == nil && pc == nil {
		return errors.New("proxy: nothing to serve")
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return errors.New("proxy: already shut down")
	}
	p.mu.Unlock()
	if ln != nil && !p.cfg.NoOOB && p.oob == nil {
		w, err := newOOBWatcher(p)
		if err != nil {
			return err
		}
		p.oob = w
		defer w.close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	n := 0
	if pc != nil {
		n++
		t := newUDPTable(p, pc)
		p.udp.Store(t)
		go func() {
			err := t.serve(ctx)
			cancel()
			errc <- err
		}()
		p.log.Info("proxy listening", "udp", pc.LocalAddr().String(), "upstream", p.cfg.Upstream)
	}
	if ln != nil {
		n++
		go func() {
			err := p.serveTCP(ctx, ln)
			cancel()
			errc <- err
		}()
		p.log.Info("proxy listening", "tcp", ln.Addr().String(), "upstream", p.cfg.Upstream)
	}
	var errs []error
	for ; n > 0; n-- {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	p.log.Info("proxy stopped")
	return errors.Join(errs...)
}

// serveTCP accepts until ctx ends, then shuts the TCP side down.
func (p *Proxy) serveTCP(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				p.shutdownTCP()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.log.Warn("proxy accept error; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			ln.Close()
			p.shutdownTCP()
			return fmt.Errorf("proxy: accept: %w", err)
		}
		delay = 0
		p.startRelay(ctx, c)
	}
}

func (p *Proxy) startRelay(ctx context.Context, c net.Conn) {
	r := &relay{p: p, client: c}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[r] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	p.activeTCP.Add(1)
	p.totalTCP.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.conns, r)
			p.mu.Unlock()
			p.activeTCP.Add(-1)
		}()
		r.run(ctx)
	}()
}

// shutdownTCP waits for open sessions up to the shutdown timeout, then cuts
// the rest and waits for their goroutines.
func (p *Proxy) shutdownTCP() {
	p.mu.Lock()
	p.closing = true
	n := len(p.conns)
	p.mu.Unlock()
	if n > 0 {
		p.log.Info("proxy shutting down", "sessions", n, "timeout", p.cfg.ShutdownTimeout)
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(p.cfg.ShutdownTimeout):
	}
	p.mu.Lock()
	for r := range p.conns {
		r.abort()
	}
	p.mu.Unlock()
	<-done
}
