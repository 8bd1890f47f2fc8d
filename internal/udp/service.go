package udp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tfd-project/tfd/internal/tlb"
)

// Datagram types (byte 0 of a request, WIRE.md §6).
const (
	HostCheck = 0
	ProcCheck = 1
	SockCheck = 2
	TLB       = 3
)

// Reply status bytes.
const (
	statusFail = 0
	statusOK   = 1
)

// MaxDatagram is how much of a request is read; the rest of a longer datagram
// is dropped, as the reference does.
const MaxDatagram = 400

// Limits of the per-source UDP_TLB pickers: a source's rotation is kept while
// it keeps asking, and forgotten after PickerIdle without a request. At most
// MaxPickers sources are remembered; beyond that the least recently used is
// forgotten first.
const (
	MaxPickers = 4096
	PickerIdle = 2 * time.Minute
)

// DefaultTLBRate bounds UDP_TLB answers per second, all sources together. A
// 1-byte UDP_TLB request gets up to ~50 bytes back to an address nobody
// verified, which makes an unbounded UDP_TLB a reflection amplifier; at this
// rate the worst case is ~50 KB/s, far above what clients asking once before
// they connect need. Requests over the rate get no reply (clients retry).
const DefaultTLBRate = 1000

// Handler answers the UDP services. Its methods are safe for concurrent use.
type Handler struct {
	// TLBRate is the most UDP_TLB answers per second (0: DefaultTLBRate;
	// negative: unlimited).
	TLBRate int

	// Sessions is where PROCHECK and SOCKCHECK look keys up.
	Sessions *Registry
	// Pool returns the TLB pool UDP_TLB answers from (nil or a nil result:
	// every UDP_TLB fails).
	Pool func() tlb.Pool
	// Log receives errors of Serve (nil: discarded).
	Log *slog.Logger

	mu      sync.Mutex
	pickers map[string]*pickerEntry
	now     func() time.Time

	limitOnce sync.Once
	limit     *rate.Limiter // nil: unlimited
}

// allowTLB reports whether one more UDP_TLB answer fits the rate.
func (h *Handler) allowTLB() bool {
	h.limitOnce.Do(func() {
		r := h.TLBRate
		if r == 0 {
			r = DefaultTLBRate
		}
		if r > 0 {
			h.limit = rate.NewLimiter(rate.Limit(r), r)
		}
	})
	if h.limit == nil {
		return true
	}
	h.mu.Lock()
	if h.now == nil {
		h.now = time.Now
	}
	now := h.now()
	h.mu.Unlock()
	return h.limit.AllowN(now, 1)
}

type pickerEntry struct {
	p    tlb.Picker
	last time.Time
}

// Handle returns the reply to one request datagram from the source named from
// (used only to keep UDP_TLB's rotation per source), or nil when the request
// gets no reply: an empty datagram, an unknown type, or a UDP_TLB over the rate.
func (h *Handler) Handle(pkt []byte, from string) []byte {
	if len(pkt) == 0 {
		return nil
	}
	if len(pkt) > MaxDatagram {
		pkt = pkt[:MaxDatagram]
	}
	switch pkt[0] {
	case HostCheck:
		return []byte{statusOK}
	case ProcCheck:
		if _, ok := h.lookup(pkt[1:]); ok {
			return []byte{statusOK}
		}
		return []byte{statusFail}
	case SockCheck:
		s, ok := h.lookup(pkt[1:])
		if !ok {
			return []byte{statusFail}
		}
		// The spec's counter is unsigned 32-bit; tfd prints it unsigned (the
		// reference's %d turns it negative above 2^31-1).
		return append(strconv.AppendUint([]byte{statusOK}, uint64(s.OOB()), 10), 0)
	case TLB:
		if !h.allowTLB() {
			return nil
		}
		tuple, err := h.nextTuple(from)
		if err != nil {
			return []byte{statusFail}
		}
		// WIRE.md §P row 14: status byte, one space, the tuple, no NUL.
		return append([]byte{statusOK, ' '}, tuple...)
	}
	return nil
}

// lookup finds the session named by a datagram's key: the bytes after the type,
// up to a NUL if the client sent a C string.
func (h *Handler) lookup(key []byte) (*Session, bool) {
	if i := bytes.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	if len(key) == 0 || len(key) > MaxKeyLen || h.Sessions == nil {
		return nil, false
	}
	return h.Sessions.Lookup(string(key))
}

func (h *Handler) nextTuple(from string) (string, error) {
	var pool tlb.Pool
	if h.Pool != nil {
		pool = h.Pool()
	}
	if pool == nil {
		return "", tlb.ErrEmpty
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.now == nil {
		h.now = time.Now
	}
	now := h.now()
	if h.pickers == nil {
		h.pickers = make(map[string]*pickerEntry)
	}
	e, ok := h.pickers[from]
	if ok && now.Sub(e.last) > PickerIdle {
		ok = false // an expired rotation starts over
	}
	if !ok {
		if len(h.pickers) >= MaxPickers {
			h.evictLocked(now)
		}
		e = &pickerEntry{p: pool.NewPicker()}
		h.pickers[from] = e
	}
	e.last = now
	t, err := e.p.Next()
	if err != nil {
		return "", err
	}
	return t, nil
}

// evictLocked drops every expired picker, and the least recently used one if
// none had expired.
func (h *Handler) evictLocked(now time.Time) {
	var oldest string
	var oldestT time.Time
	for k, e := range h.pickers {
		if now.Sub(e.last) > PickerIdle {
			delete(h.pickers, k)
			continue
		}
		if oldest == "" || e.last.Before(oldestT) {
			oldest, oldestT = k, e.last
		}
	}
	if len(h.pickers) >= MaxPickers {
		delete(h.pickers, oldest)
	}
}

// Pickers returns how many UDP_TLB sources are remembered.
func (h *Handler) Pickers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pickers)
}

// Serve answers datagrams on pc until ctx ends, then closes pc and returns nil.
// It returns an error only when pc fails for good.
func (h *Handler) Serve(ctx context.Context, pc net.PacketConn) error {
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, MaxDatagram)
	var delay time.Duration
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("udp: %w", err)
			}
			// A transient error (e.g. ENOBUFS) must not end the service.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if h.Log != nil {
				h.Log.Warn("udp read error; retrying", "err", err, "delay", delay)
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if reply := h.Handle(buf[:n], addr.String()); reply != nil {
			if _, err := pc.WriteTo(reply, addr); err != nil && h.Log != nil {
				h.Log.Debug("udp reply", "to", addr.String(), "err", err)
			}
		}
	}
}
