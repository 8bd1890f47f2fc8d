package udp

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/tlb"
)

// fakePool hands out "4 10.0.0.<i>;<port>" for i = 1..n, each picker from the
// first; n = 0 is an empty pool.
type fakePool struct{ n int }

func (p fakePool) NewPicker() tlb.Picker { return &fakePicker{n: p.n} }

type fakePicker struct{ n, i int }

func (p *fakePicker) Next() (string, error) {
	if p.n == 0 {
		return "", tlb.ErrEmpty
	}
	p.i = p.i%p.n + 1
	return fmt.Sprintf("4 10.0.0.%d;%d", p.i, 10000+p.i), nil
}

func TestHandle(t *testing.T) {
	reg := NewRegistry()
	var live Session
	key, err := reg.Register(&live)
	if err != nil {
		t.Fatal(err)
	}
	live.CountOOB()
	live.CountOOB()
	gone := &Session{}
	goneKey, _ := reg.Register(gone)
	reg.Unregister(goneKey)
	h := &Handler{Sessions: reg, Pool: func() tlb.Pool { return fakePool{n: 2} }}
	empty := &Handler{Sessions: reg, Pool: func() tlb.Pool { return fakePool{} }}
	nilPool := &Handler{Sessions: reg}

	tests := []struct {
		name string
		h    *Handler
		pkt  []byte
		want []byte // nil: no reply
	}{
		{"empty datagram", h, nil, nil},
		{"unknown type", h, []byte{4}, nil},
		{"unknown type 0xff with key", h, append([]byte{0xff}, key...), nil},
		{"hostcheck", h, []byte{0}, []byte{1}},
		{"hostcheck with payload", h, []byte{0, 'x', 'y'}, []byte{1}},
		{"procheck live", h, append([]byte{1}, key...), []byte{1}},
		{"procheck live, NUL-terminated", h, append(append([]byte{1}, key...), 0, 'z'), []byte{1}},
		{"procheck ended session", h, append([]byte{1}, goneKey...), []byte{0}},
		{"procheck no key", h, []byte{1}, []byte{0}},
		{"procheck truncated key", h, append([]byte{1}, key[:len(key)-1]...), []byte{0}},
		{"procheck key without slash", h, append([]byte{1}, key[1:]...), []byte{0}},
		{"procheck key plus junk", h, append(append([]byte{1}, key...), 'x'), []byte{0}},
		{"procheck overlong", h, append([]byte{1}, bytes.Repeat([]byte{'1'}, 500)...), []byte{0}},
		{"sockcheck live", h, append([]byte{2}, key...), []byte{1, '2', 0}},
		{"sockcheck ended session", h, append([]byte{2}, goneKey...), []byte{0}},
		{"sockcheck no key", h, []byte{2}, []byte{0}},
		{"tlb", h, []byte{3}, []byte("\x01 4 10.0.0.1;10001")},
		{"tlb empty pool", empty, []byte{3}, []byte{0}},
		{"tlb no pool", nilPool, []byte{3}, []byte{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.Handle(tc.pkt, "src-"+tc.name)
			if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("Handle(% x) = %q, want %q", tc.pkt, got, tc.want)
			}
		})
	}
}

func TestSockCheckCounterWraps(t *testing.T) {
	reg := NewRegistry()
	var s Session
	key, _ := reg.Register(&s)
	s.oob.Store(1<<32 - 1)
	h := &Handler{Sessions: reg}
	if got := h.Handle(append([]byte{2}, key...), "a"); string(got) != "\x014294967295\x00" {
		t.Fatalf("got %q", got)
	}
	s.CountOOB()
	if got := h.Handle(append([]byte{2}, key...), "a"); string(got) != "\x010\x00" {
		t.Fatalf("after wrap got %q", got)
	}
}

func TestTLBRotationPerSource(t *testing.T) {
	clock := time.Unix(1000, 0)
	h := &Handler{Pool: func() tlb.Pool { return fakePool{n: 3} }, now: func() time.Time { return clock }}
	next := func(src string) string {
		t.Helper()
		r := h.Handle([]byte{3}, src)
		if len(r) < 2 || r[0] != 1 || r[1] != ' ' {
			t.Fatalf("reply %q", r)
		}
		return string(r[2:])
	}
	if a, b, c, d := next("A"), next("A"), next("B"), next("A"); a != "4 10.0.0.1;10001" || b != "4 10.0.0.2;10002" || c != a || d != "4 10.0.0.3;10003" {
		t.Fatalf("rotation %q %q %q %q", a, b, c, d)
	}
	if got := next("A"); got != "4 10.0.0.1;10001" {
		t.Fatalf("wrap: %q", got)
	}
	clock = clock.Add(PickerIdle + time.Second)
	next("A") // expired: starts over
	if got := next("A"); got != "4 10.0.0.2;10002" {
		t.Fatalf("after expiry: %q", got)
	}
}

func TestPickersBounded(t *testing.T) {
	clock := time.Unix(1000, 0)
	h := &Handler{Pool: func() tlb.Pool { return fakePool{n: 2} }, now: func() time.Time { return clock }}
	for i := range MaxPickers + 50 {
		clock = clock.Add(time.Millisecond)
		h.Handle([]byte{3}, fmt.Sprint("src", i))
	}
	if n := h.Pickers(); n > MaxPickers {
		t.Fatalf("%d pickers remembered, limit %d", n, MaxPickers)
	}
	// The most recent source is kept: its next tuple continues the rotation.
	if r := h.Handle([]byte{3}, fmt.Sprint("src", MaxPickers+49)); !strings.HasSuffix(string(r), "10.0.0.2;10002") {
		t.Fatalf("recent source lost its rotation: %q", r)
	}
	// Once everything expired, one new source clears the lot.
	clock = clock.Add(PickerIdle + time.Second)
	for i := range MaxPickers {
		h.Handle([]byte{3}, fmt.Sprint("new", i))
	}
	if n := h.Pickers(); n > MaxPickers {
		t.Fatalf("%d pickers", n)
	}
}

// TestTLBRateBounded: UDP_TLB answers beyond the rate get no reply, so the
// service cannot be used to reflect unbounded traffic; the budget refills with
// time, and the other checks are not limited.
func TestTLBRateBounded(t *testing.T) {
	clock := time.Unix(1000, 0)
	h := &Handler{TLBRate: 5, Pool: func() tlb.Pool { return fakePool{n: 2} }, now: func() time.Time { return clock }}
	answered := 0
	for i := range 20 {
		if h.Handle([]byte{3}, fmt.Sprint("victim:", i)) != nil {
			answered++
		}
	}
	if answered != 5 {
		t.Fatalf("%d of 20 UDP_TLB answered at one instant, want the burst of 5", answered)
	}
	if r := h.Handle([]byte{0}, "victim:1"); !bytes.Equal(r, []byte{1}) {
		t.Fatalf("HOSTCHECK limited too: %q", r)
	}
	clock = clock.Add(time.Second)
	if h.Handle([]byte{3}, "victim:1") == nil {
		t.Fatal("no answer after the budget refilled")
	}
	unlimited := &Handler{TLBRate: -1, Pool: func() tlb.Pool { return fakePool{n: 2} }, now: func() time.Time { return clock }}
	for i := range 5000 {
		if unlimited.Handle([]byte{3}, "s") == nil {
			t.Fatalf("unlimited handler refused request %d", i)
		}
	}
}

func TestRegistryKeys(t *testing.T) {
	reg := NewRegistry()
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				k, err := reg.Register(&Session{})
				if err != nil {
					t.Error(err)
					return
				}
				if len(k) > MaxKeyLen || k[0] != '/' || strings.Trim(k[1:], "0123456789") != "" {
					t.Errorf("bad key %q", k)
				}
				mu.Lock()
				if seen[k] {
					t.Errorf("duplicate key %q", k)
				}
				seen[k] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if reg.Len() != len(seen) {
		t.Fatalf("registry holds %d, made %d", reg.Len(), len(seen))
	}
	for k := range seen {
		reg.Unregister(k)
	}
	if reg.Len() != 0 {
		t.Fatal("unregister left keys")
	}
}

// FuzzHandle: no datagram may panic the handler, and replies keep their shape.
func FuzzHandle(f *testing.F) {
	reg := NewRegistry()
	var s Session
	key, _ := reg.Register(&s)
	for _, seed := range [][]byte{{}, {0}, {1}, {2}, {3}, {9}, append([]byte{1}, key...), append([]byte{2}, key...), append([]byte{2}, key[:5]...)} {
		f.Add(seed)
	}
	h := &Handler{Sessions: reg, Pool: func() tlb.Pool { return fakePool{n: 2} }}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		r := h.Handle(pkt, "fuzz")
		switch {
		case len(pkt) == 0 || pkt[0] > 3:
			if r != nil {
				t.Fatalf("reply %q to type-less/unknown datagram", r)
			}
		case pkt[0] == 0:
			if !bytes.Equal(r, []byte{1}) {
				t.Fatalf("hostcheck reply %q", r)
			}
		case len(r) == 0 || r[0] > 1:
			t.Fatalf("reply %q", r)
		case pkt[0] == 1 && r[0] == 1 && !bytes.HasPrefix(pkt[1:], []byte(key)):
			t.Fatalf("procheck true for %q", pkt)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	reg := NewRegistry()
	var s Session
	key, _ := reg.Register(&s)
	for range 10000 {
		reg.Register(&Session{})
	}
	h := &Handler{Sessions: reg, Pool: func() tlb.Pool { return fakePool{n: 4} }}
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{
		{"hostcheck", []byte{0}},
		{"procheck", append([]byte{1}, key...)},
		{"sockcheck", append([]byte{2}, key...)},
		{"udp_tlb", []byte{3}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.Handle(bc.pkt, "10.0.0.1:5000")
			}
		})
	}
}
