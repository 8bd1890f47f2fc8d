package gateway

import (
	"sync"
	"time"
)

// Limits bound one peer's send queue. The zero value means the defaults.
type Limits struct {
	// MaxMessages is the most messages queued for one receiver (default 1024).
	MaxMessages int
	// MaxBytes is the most payload bytes queued for one receiver (default
	// 4 MiB). It is raised to MaxMessage when smaller, so that any single
	// valid message can be queued.
	MaxBytes int
	// WriteTimeout bounds one write of queued messages to the receiver
	// (default 30 s). A receiver that accepts nothing for that long is
	// disconnected, as a stuck writer would otherwise pin its queue forever.
	// It is applied by the write function the session gives the Outbox.
	WriteTimeout time.Duration
}

// Default limits.
const (
	DefaultMaxMessages  = 1024
	DefaultMaxBytes     = 4 << 20
	DefaultWriteTimeout = 30 * time.Second
)

// WithDefaults returns l with every unset or invalid field at its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxBytes < MaxMessage {
		l.MaxBytes = MaxMessage
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	return l
}

// batchBytes is how many payload bytes the writer gathers into one write when
// several messages are waiting (a single larger message is written alone).
const batchBytes = 64 * 1024

// Outbox is the receiving end of one gateway session, the Peer the session
// attaches to the Bus: a bounded queue (by count and by bytes) drained by one
// writer goroutine, so that a sender never waits for a slow receiver.
//
// Accounting: Enqueue does not count its own refusals (ErrQueueFull,
// ErrPeerGone) — whoever called Bus.Send counts the error it gets back. The
// Outbox counts what happens to accepted messages: Delivered when written,
// dropped as ErrPeerGone when the peer leaves or is evicted with them still
// queued, or as ErrWriteFailed when its connection fails.
type Outbox struct {
	write func(batch [][]byte) error
	lim   Limits
	ctr   *Counters

	mu      sync.Mutex
	queue   [][]byte
	qbytes  int
	state   outboxState
	started bool
	err     error

	wake chan struct{} // capacity 1: "the queue is not empty"
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer has returned
}

type outboxState uint8

const (
	open outboxState = iota
	evicted
	closed
)

// NewOutbox returns an Outbox whose writer will pass queued messages, in
// order and in batches, to write. write must send every message of the batch
// as one framed message each (or fail); it runs on the writer goroutine only,
// and should enforce lim.WriteTimeout. After write fails, the Outbox accepts
// nothing more. ctr may be nil.
func NewOutbox(write func(batch [][]byte) error, lim Limits, ctr *Counters) *Outbox {
	if ctr == nil {
		ctr = new(Counters)
	}
	return &Outbox{
		write: write, lim: lim.WithDefaults(), ctr: ctr,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Limits returns the limits in force.
func (o *Outbox) Limits() Limits { return o.lim }

// Start launches the writer goroutine. Messages may be queued before Start
// (for instance between registering the identity and telling the client OK);
// they are written once it runs. Start after Close does nothing.
func (o *Outbox) Start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started || o.state == closed {
		return
	}
	o.started = true
	go o.run()
}

// Enqueue implements Peer: it queues msg without blocking and takes ownership
// of it. It returns ErrQueueFull when the count or byte bound would be
// exceeded, ErrPeerGone after Evicted, Close or a write failure.
func (o *Outbox) Enqueue(msg []byte) error {
	o.mu.Lock()
	if o.state != open {
		o.mu.Unlock()
		return ErrPeerGone
	}
	if len(o.queue) >= o.lim.MaxMessages || o.qbytes+len(msg) > o.lim.MaxBytes {
		o.mu.Unlock()
		return ErrQueueFull
	}
	o.queue = append(o.queue, msg)
	o.qbytes += len(msg)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Evicted implements Peer: a newer registration of the identity won. The
// peer stops receiving (queued messages are dropped and nothing more is
// accepted) and is told nothing; its session stays in the gateway and may
// still send.
func (o *Outbox) Evicted() {
	o.mu.Lock()
	if o.state != open {
		o.mu.Unlock()
		return
	}
	o.state = evicted
	n := o.dropQueueLocked()
	o.mu.Unlock()
	o.ctr.Evicted()
	o.ctr.Drop(ErrPeerGone, n)
}

// Len returns the number of queued messages and their payload bytes.
func (o *Outbox) Len() (msgs, bytes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue), o.qbytes
}

// Err returns the write error that stopped the writer, if any.
func (o *Outbox) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Close stops the Outbox: queued messages are dropped (counted as
// ErrPeerGone), later Enqueues fail, and Close waits until the writer has
// finished the write in progress, if any, and returned. After Close returns,
// the Outbox writes nothing more. A caller that cannot wait for a stuck
// receiver must make the write fail first (a past write deadline). It returns
// the writer's error, if a write failed. Close may be called more than once.
func (o *Outbox) Close() error {
	o.mu.Lock()
	first := o.state != closed
	o.state = closed
	n := o.dropQueueLocked()
	started := o.started
	o.mu.Unlock()
	o.ctr.Drop(ErrPeerGone, n)
	if first {
		close(o.stop)
	}
	if started {
		<-o.done
	}
	return o.Err()
}

func (o *Outbox) dropQueueLocked() int {
	n := len(o.queue)
	clear(o.queue)
	o.queue = o.queue[:0]
	o.qbytes = 0
	return n
}

// run is the writer goroutine.
func (o *Outbox) run() {
	defer close(o.done)
	var batch [][]byte
	for {
		select {
		case <-o.wake:
		case <-o.stop:
			return
		}
		for {
			batch = o.take(batch[:0])
			if len(batch) == 0 {
				break
			}
			if err := o.write(batch); err != nil {
				o.mu.Lock()
				o.err = err
				o.state = closed
				n := o.dropQueueLocked()
				o.mu.Unlock()
				// The batch is lost with the connection, and so is the rest.
				o.ctr.Drop(ErrWriteFailed, n+len(batch))
				clear(batch)
				return
			}
			o.ctr.Delivered(len(batch))
			clear(batch)
		}
	}
}

// take moves the next batch from the queue into batch: every waiting message
// up to batchBytes, and always at least one.
func (o *Outbox) take(batch [][]byte) [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != open {
		return batch
	}
	size, i := 0, 0
	for ; i < len(o.queue); i++ {
		m := o.queue[i]
		if i > 0 && size+len(m) > batchBytes {
			break
		}
		size += len(m)
		batch = append(batch, m)
	}
	// Shift the rest to the front so the backing array is reused.
	n := copy(o.queue, o.queue[i:])
	clear(o.queue[n:])
	o.queue = o.queue[:n]
	o.qbytes -= size
	return batch
}
