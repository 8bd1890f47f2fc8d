package proxy

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Datagram sizes. Client datagrams of any size are relayed (the reference
// proxy cuts them at 400 bytes). The server's answers are at most a status
// byte, a TLB tuple and a NUL, far below maxReply; a longer answer would be
// cut, which is what keeps a full table at 4096 × 4 KiB of buffers.
const (
	maxDatagram = 64 << 10
	maxReply    = 4 << 10
	// resolveTTL is how long a resolved upstream address is reused for new
	// UDP sessions.
	resolveTTL = 30 * time.Second
)

// udpTable maps client source addresses to their upstream sockets.
type udpTable struct {
	p  *Proxy
	pc net.PacketConn

	mu      sync.Mutex
	byAddr  map[netip.AddrPort]*list.Element // of *udpSession
	lru     *list.List                       // front = most recently used
	evicted uint64
	closed  bool

	resolved   netip.AddrPort
	resolvedAt time.Time

	wg sync.WaitGroup
}

type udpSession struct {
	t      *udpTable
	client net.Addr
	key    netip.AddrPort
	up     *net.UDPConn
	last   atomic.Int64 // unix nanoseconds of the last datagram either way
	closed atomic.Bool
}

func newUDPTable(p *Proxy, pc net.PacketConn) *udpTable {
	return &udpTable{p: p, pc: pc, byAddr: make(map[netip.AddrPort]*list.Element), lru: list.New()}
}

func (t *udpTable) stats() (int, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len(), t.evicted
}

// serve relays client datagrams until ctx ends or the socket fails, then ends
// every session and waits for their goroutines.
func (t *udpTable) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { t.pc.Close() })
	defer stop()
	defer t.closeAll()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := t.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("proxy: udp read: %w", err)
		}
		s, err := t.session(ctx, addr)
		if err != nil {
			t.p.log.Warn("proxy: udp upstream unusable; datagram dropped", "client", addr.String(), "err", err)
			continue
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.up.Write(buf[:n]); err != nil && !isRefused(err) {
			t.p.log.Debug("proxy: udp send upstream", "client", addr.String(), "err", err)
		}
	}
}

// session returns addr's session, making it (and making room) if needed.
func (t *udpTable) session(ctx context.Context, addr net.Addr) (*udpSession, error) {
	key, err := addrPort(addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if e, ok := t.byAddr[key]; ok {
		t.lru.MoveToFront(e)
		t.mu.Unlock()
		return e.Value.(*udpSession), nil
	}
	t.mu.Unlock()

	to, err := t.upstreamAddr(ctx)
	if err != nil {
		return nil, err
	}
	up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", to, err)
	}
	s := &udpSession{t: t, client: addr, key: key, up: up}
	s.last.Store(time.Now().UnixNano())

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		up.Close()
		return nil, errors.New("shutting down")
	}
	var victim *udpSession
	if t.lru.Len() >= t.p.cfg.MaxUDPSessions {
		back := t.lru.Back()
		victim = back.Value.(*udpSession)
		t.lru.Remove(back)
		delete(t.byAddr, victim.key)
		t.evicted++
	}
	t.byAddr[key] = t.lru.PushFront(s)
	t.wg.Add(1)
	t.mu.Unlock()
	if victim != nil {
		victim.close()
	}
	go s.readReplies()
	return s, nil
}

// upstreamAddr resolves the upstream for a new session: the first address in
// the resolver's order (RFC 6724, which prefers what this host can reach),
// reused for resolveTTL.
func (t *udpTable) upstreamAddr(ctx context.Context) (netip.AddrPort, error) {
	t.mu.Lock()
	if t.resolved.IsValid() && time.Since(t.resolvedAt) < resolveTTL {
		a := t.resolved
		t.mu.Unlock()
		return a, nil
	}
	t.mu.Unlock()
	host, port, _ := net.SplitHostPort(t.p.cfg.Upstream)
	pn, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ip netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ip = a
	} else {
		rctx, cancel := context.WithTimeout(ctx, t.p.cfg.DialTimeout)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return netip.AddrPort{}, err
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("no address for %s", host)
		}
		ip = ips[0]
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(pn))
	t.mu.Lock()
	t.resolved, t.resolvedAt = ap, time.Now()
	t.mu.Unlock()
	return ap, nil
}

// readReplies sends every datagram the upstream answers on s back to s's
// client, until s is idle for UDPIdleTimeout or closed.
func (s *udpSession) readReplies() {
	t := s.t
	defer t.wg.Done()
	defer s.remove()
	idle := t.p.cfg.UDPIdleTimeout
	buf := make([]byte, maxReply)
	for {
		s.up.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		n, err := s.up.Read(buf)
		if err != nil {
			if s.closed.Load() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Since(time.Unix(0, s.last.Load())) >= idle {
					return
				}
				continue
			}
			if isRefused(err) {
				// The upstream port answered ICMP unreachable for an
				// earlier datagram; the server may be back for the next.
				continue
			}
			t.p.log.Debug("proxy: udp read upstream", "client", s.client.String(), "err", err)
			return
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := t.pc.WriteTo(buf[:n], s.client); err != nil {
			t.p.log.Debug("proxy: udp send to client", "client", s.client.String(), "err", err)
		}
	}
}

// remove takes s out of the table (if it is still there) and closes it.
func (s *udpSession) remove() {
	t := s.t
	t.mu.Lock()
	if e, ok := t.byAddr[s.key]; ok && e.Value.(*udpSession) == s {
		t.lru.Remove(e)
		delete(t.byAddr, s.key)
	}
	t.mu.Unlock()
	s.close()
}

func (s *udpSession) close() {
	if s.closed.CompareAndSwap(false, true) {
		s.up.Close()
	}
}

// closeAll ends every session and waits for their goroutines.
func (t *udpTable) closeAll() {
	t.mu.Lock()
	t.closed = true
	var all []*udpSession
	for e := t.lru.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*udpSession))
	}
	t.mu.Unlock()
	for _, s := range all {
		s.close()
	}
	t.wg.Wait()
}

func addrPort(a net.Addr) (netip.AddrPort, error) {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort(), nil
	}
	return netip.ParseAddrPort(a.String())
}
