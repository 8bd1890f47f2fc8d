package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink collects what an Outbox writes; block, when set, stalls writes until
// closed.
type sink struct {
	mu      sync.Mutex
	got     [][]byte
	batches int
	block   chan struct{}
	fail    error
	written chan struct{}
}

func newSink() *sink { return &sink{written: make(chan struct{}, 1<<16)} }

func (s *sink) write(batch [][]byte) error {
	if s.block != nil {
		<-s.block
	}
	if s.fail != nil {
		return s.fail
	}
	s.mu.Lock()
	for _, m := range batch {
		s.got = append(s.got, append([]byte(nil), m...))
	}
	s.batches++
	s.mu.Unlock()
	for range batch {
		s.written <- struct{}{}
	}
	return nil
}

func (s *sink) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for range n {
		<-s.written
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

func TestOutboxOrderAndBatching(t *testing.T) {
	var ctr Counters
	s := newSink()
	o := NewOutbox(s.write, Limits{}, &ctr)
	// Queued before Start: written once the writer runs.
	const n = 500
	for i := range n {
		if err := o.Enqueue(fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	o.Start()
	got := s.wait(t, n)
	for i, m := range got {
		if want := fmt.Sprintf("m%d", i); string(m) != want {
			t.Fatalf("message %d = %q, want %q", i, m, want)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	st := ctr.Stats()
	if st.Delivered != n || st.Dropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s.batches >= n {
		t.Fatalf("%d batches for %d queued messages: no batching", s.batches, n)
	}
	if err := o.Enqueue([]byte("late")); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("enqueue after close: %v", err)
	}
}

func TestOutboxBounds(t *testing.T) {
	tests := []struct {
		name  string
		lim   Limits
		sizes []int
		want  []error
	}{
		{"count", Limits{MaxMessages: 2}, []int{1, 1, 1}, []error{nil, nil, ErrQueueFull}},
		{"bytes", Limits{MaxBytes: MaxMessage}, []int{MaxMessage - 10, 10, 1, 0}, []error{nil, nil, ErrQueueFull, nil}},
		{"bytes raised to one message", Limits{MaxBytes: 10}, []int{MaxMessage, 1}, []error{nil, ErrQueueFull}},
		{"empty messages count", Limits{MaxMessages: 1}, []int{0, 0}, []error{nil, ErrQueueFull}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctr Counters
			s := newSink()
			o := NewOutbox(s.write, tt.lim, &ctr) // not started: the queue only fills
			for i, n := range tt.sizes {
				if err := o.Enqueue(make([]byte, n)); !errors.Is(err, tt.want[i]) {
					t.Fatalf("enqueue %d (%d bytes): %v, want %v", i, n, err, tt.want[i])
				}
			}
			o.Close()
			queued := 0
			for _, w := range tt.want {
				if w == nil {
					queued++
				}
			}
			if st := ctr.Stats(); st.DroppedPeerGone != uint64(queued) {
				t.Fatalf("close dropped %d, want %d", st.DroppedPeerGone, queued)
			}
		})
	}
}

func TestOutboxSlowWriterNeverBlocksEnqueue(t *testing.T) {
	var ctr Counters
	s := newSink()
	s.block = make(chan struct{})
	o := NewOutbox(s.write, Limits{MaxMessages: 8}, &ctr)
	o.Start()
	full := 0
	for range 100 {
		if err := o.Enqueue([]byte("x")); errors.Is(err, ErrQueueFull) {
			full++
		}
	}
	// The writer holds at most one batch; 8 more fit the queue.
	if full < 100-8-8 {
		t.Fatalf("only %d of 100 refused with a stalled writer", full)
	}
	close(s.block)
	o.Close()
}

func TestOutboxWriteFailure(t *testing.T) {
	var ctr Counters
	s := newSink()
	s.fail = errors.New("broken pipe")
	o := NewOutbox(s.write, Limits{}, &ctr)
	o.Start()
	if err := o.Enqueue([]byte("a")); err != nil {
		t.Fatal(err)
	}
	<-o.done
	if err := o.Enqueue([]byte("b")); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("after failure: %v", err)
	}
	if err := o.Close(); err == nil || err.Error() != "broken pipe" {
		t.Fatalf("Close = %v", err)
	}
	if st := ctr.Stats(); st.DroppedWriteErr != 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLocalBus(t *testing.T) {
	var ctr Counters
	b := NewLocalBus()
	defer b.Close()
	sa, sb := newSink(), newSink()
	a := NewOutbox(sa.write, Limits{}, &ctr)
	a.Start()
	defer a.Close()
	detachA, err := b.Attach("alice", a)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send("alice", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := sa.wait(t, 1); !bytes.Equal(got[0], []byte("hi")) {
		t.Fatalf("got %q", got)
	}
	for _, tt := range []struct {
		id   string
		size int
		want error
	}{
		{"bob", 1, ErrUnknownIdentity},
		{"Alice", 1, ErrUnknownIdentity}, // exact match
		{"/alice", 1, ErrUnknownIdentity},
		{"alice", MaxMessage + 1, ErrTooLarge},
	} {
		if err := b.Send(tt.id, make([]byte, tt.size)); !errors.Is(err, tt.want) {
			t.Errorf("Send(%q, %d) = %v, want %v", tt.id, tt.size, err, tt.want)
		}
	}

	// A newer registration wins; the old peer is evicted and its detach
	// no longer removes the identity.
	a2 := NewOutbox(sb.write, Limits{}, &ctr)
	a2.Start()
	defer a2.Close()
	detachA2, err := b.Attach("alice", a2)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Enqueue([]byte("x")); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("evicted peer accepts messages: %v", err)
	}
	detachA()
	detachA() // idempotent
	if err := b.Send("alice", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := sb.wait(t, 1); string(got[0]) != "new" {
		t.Fatalf("new holder got %q", got)
	}
	if st := ctr.Stats(); st.Evicted != 1 {
		t.Fatalf("evicted %d", st.Evicted)
	}
	detachA2()
	if b.Len() != 0 {
		t.Fatalf("%d identities left", b.Len())
	}
	if err := b.Send("alice", nil); !errors.Is(err, ErrUnknownIdentity) {
		t.Fatalf("after detach: %v", err)
	}
	b.Close()
	if _, err := b.Attach("carol", a2); !errors.Is(err, ErrClosed) {
		t.Fatalf("attach after close: %v", err)
	}
}

func TestCountersDropReasons(t *testing.T) {
	var c Counters
	for _, e := range []error{ErrUnknownIdentity, ErrQueueFull, ErrPeerGone, ErrTooLarge, ErrInvalidSize, ErrWriteFailed,
		fmt.Errorf("wrapped: %w", ErrQueueFull), errors.New("nats: timeout"), nil} {
		c.Drop(e, 1)
	}
	st := c.Stats()
	want := Stats{DroppedUnknown: 1, DroppedQueueFull: 2, DroppedPeerGone: 1, DroppedTooLarge: 1, DroppedInvalid: 1, DroppedWriteErr: 1, DroppedOther: 1}
	if st != want || st.Dropped() != 8 {
		t.Fatalf("got %+v, want %+v", st, want)
	}
}

func TestLocalBusConcurrent(t *testing.T) {
	var ctr Counters
	b := NewLocalBus()
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSink()
			o := NewOutbox(s.write, Limits{MaxMessages: 4}, &ctr)
			o.Start()
			defer o.Close()
			id := fmt.Sprint("p", i%3)
			detach, err := b.Attach(id, o)
			if err != nil {
				t.Error(err)
				return
			}
			for j := range 200 {
				b.Send(fmt.Sprint("p", j%4), []byte("m"))
			}
			detach()
		}()
	}
	wg.Wait()
	if b.Len() != 0 {
		t.Fatalf("%d identities left", b.Len())
	}
}
