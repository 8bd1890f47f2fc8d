package gateway

import (
	"fmt"

	"github.com/tfd-project/tfd/tfproto"
)

// FieldReader is the part of *tfproto.Conn the gateway loop reads with.
type FieldReader interface {
	// ReadInt32 reads a raw enciphered 4-byte big-endian header.
	ReadInt32() (int32, error)
	// ReadBody reads an n-byte payload into a buffer valid until the next
	// read.
	ReadBody(n int) ([]byte, error)
	// ReadField reads len(b) bytes as one cipher unit into b.
	ReadField(b []byte) error
}

// RequestKind says what one turn of the gateway loop read (WIRE.md §7 item 5).
type RequestKind uint8

const (
	// Ignore: a header of 0 or below -1; the loop continues.
	Ignore RequestKind = iota
	// Leave: a header of -1; the session returns to command mode, no reply.
	Leave
	// Message: a destination and a message to relay.
	Message
	// Invalid: a destination followed by a negative message size; nothing
	// more was read and the message is dropped (ErrInvalidSize).
	Invalid
)

// Request is one turn of the gateway loop.
type Request struct {
	Kind RequestKind
	// Header is the first header read (the destination size, or the signal).
	Header int32
	// Dest is the destination identity (Message and Invalid).
	Dest string
	// Msg is the message, a fresh slice the caller owns (Message only).
	Msg []byte
}

// ReadRequest reads one turn of the gateway loop from r:
//
//	E(hdr32(a)) — a > 0: E(dest) E(hdr32(m)) E(msg); a = -1: leave; else ignored.
//
// A destination or message header above MaxMessage is a protocol error
// (wrapping tfproto.ErrFrameTooLarge) after which the stream is out of step
// and the session must be closed; so is any read error. A negative message
// size reads nothing more and yields Invalid. The message is read straight
// into a new slice (one cipher unit), so it can be handed to the Bus
// without a copy.
func ReadRequest(r FieldReader) (Request, error) {
	a, err := r.ReadInt32()
	if err != nil {
		return Request{}, err
	}
	switch {
	case a == -1:
		return Request{Kind: Leave, Header: a}, nil
	case a <= 0:
		return Request{Kind: Ignore, Header: a}, nil
	case a > MaxMessage:
		return Request{}, fmt.Errorf("gateway destination: %w (%d)", tfproto.ErrFrameTooLarge, a)
	}
	d, err := r.ReadBody(int(a))
	if err != nil {
		return Request{}, err
	}
	req := Request{Kind: Message, Header: a, Dest: string(d)}
	m, err := r.ReadInt32()
	if err != nil {
		return Request{}, err
	}
	switch {
	case m < 0:
		req.Kind = Invalid
		return req, nil
	case m > MaxMessage:
		return Request{}, fmt.Errorf("gateway message: %w (%d)", tfproto.ErrFrameTooLarge, m)
	}
	req.Msg = make([]byte, m)
	if m > 0 {
		if err := r.ReadField(req.Msg); err != nil {
			return Request{}, err
		}
	}
	return req, nil
}

// ReadIdentity reads the framed identity that follows XS_GATEWAY's OK. ok is
// false when the identity cannot be registered (empty, or longer than
// MaxIdentity): the caller answers FAILED 2 and the session is back in
// command mode, in step. A header above MaxMessage or a negative one is a
// protocol error.
func ReadIdentity(r FieldReader) (id string, ok bool, err error) {
	n, err := r.ReadInt32()
	if err != nil {
		return "", false, err
	}
	if n < 0 {
		return "", false, fmt.Errorf("gateway identity: %w (%d)", tfproto.ErrNegativeFrame, n)
	}
	if n > MaxMessage {
		return "", false, fmt.Errorf("gateway identity: %w (%d)", tfproto.ErrFrameTooLarge, n)
	}
	b, err := r.ReadBody(int(n))
	if err != nil {
		return "", false, err
	}
	if n == 0 || n > MaxIdentity {
		return "", false, nil
	}
	return string(b), true, nil
}
