package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tfd-project/tfd/tfproto"
)

// Answer is what a client tells the server about a notification.
type Answer string

// The answers of notification mode (WIRE.md §5.42). The server upper-cases
// the answer; anything but DEL or END keeps the file.
const (
	// Keep leaves the file in place (OK).
	Keep Answer = "OK"
	// Delete makes the server delete the file (DEL).
	Delete Answer = "DEL"
	// End makes the server close the session (END).
	End Answer = "END"
)

// Notification is one message of notification mode: a file whose name starts
// with an entry's token appeared in that entry's directory.
type Notification struct {
	// Index is the entry's 0-based position among the successful AddNotify
	// calls of the session.
	Index int
	// Name is the bare file name (no directory).
	Name string
}

// AddNotify adds an entry to the session's watch list (ADDNTFY): files in dir
// whose names start with token ("" = every file). The token is at most 7 bytes
// and may not contain spaces or "/". The first successful call is entry 0, the
// next entry 1, and so on.
func (c *Client) AddNotify(ctx context.Context, token, dir string) error {
	_, err := c.command(ctx, "ADDNTFY "+token+" "+dir)
	return err
}

// NotifyStream is a session in notification mode. Each Next must be followed by
// one Answer before the next Next.
type NotifyStream struct {
	c       *Client
	pending bool
	ended   bool
}

// ErrNotifyAnswer is returned by Next when the previous notification has not
// been answered, and by Answer when there is nothing to answer.
var ErrNotifyAnswer = errors.New("client: notification answer out of order")

// StartNotify switches the session to notification mode for good (STARTNTFY)
// and returns the stream of notifications. interval is the server's sweep
// interval in seconds, as a C double ("0.5", "1e-3"; "" = the server's
// default). The server sends no OK: an empty watch list is reported by the
// first Next as FAILED 6, after which the session is still in standard mode.
//
// A stream's session serves nothing else. Cancelling a Next's ctx breaks the
// session (close it).
func (c *Client) StartNotify(ctx context.Context, interval string) (*NotifyStream, error) {
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		return conn.WriteFrameString("STARTNTFY " + interval)
	})
	if err != nil {
		return nil, err
	}
	return &NotifyStream{c: c}, nil
}

// Next waits for the next notification. It returns a *tfproto.Error (FAILED 6)
// when the watch list was empty.
func (n *NotifyStream) Next(ctx context.Context) (Notification, error) {
	if n.pending || n.ended {
		return Notification{}, ErrNotifyAnswer
	}
	var note Notification
	err := n.c.Exchange(ctx, func(conn *tfproto.Conn) error {
		body, err := conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			return err
		}
		msg := string(body)
		idx, name, ok := strings.Cut(msg, " ")
		i, perr := strconv.Atoi(idx)
		if ok && perr == nil && i >= 0 {
			note = Notification{Index: i, Name: name}
			return nil
		}
		st := tfproto.ParseStatus([]byte(msg))
		if err := st.Err(); err != nil {
			return err
		}
		return fmt.Errorf("client: unexpected message %q in notification mode", truncate(msg, 60))
	})
	if err != nil {
		var fe *tfproto.Error
		if errors.As(err, &fe) {
			n.ended = true // STARTNTFY was refused: standard mode again
		}
		return Notification{}, err
	}
	n.pending = true
	return note, nil
}

// Answer answers the last notification. After End the server closes the
// session.
func (n *NotifyStream) Answer(ctx context.Context, a Answer) error {
	if !n.pending {
		return ErrNotifyAnswer
	}
	n.pending = false
	if a == End {
		n.ended = true
	}
	return n.c.Exchange(ctx, func(conn *tfproto.Conn) error {
		return conn.WriteFrameString(string(a))
	})
}

// Notifications runs notification mode (StartNotify) and calls fn for each
// notification, answering with what it returns, until fn returns End (then it
// returns nil and the server closes the session), ctx ends, or an error occurs.
func (c *Client) Notifications(ctx context.Context, interval string, fn func(Notification) Answer) error {
	st, err := c.StartNotify(ctx, interval)
	if err != nil {
		return err
	}
	for {
		note, err := st.Next(ctx)
		if err != nil {
			return err
		}
		a := fn(note)
		if err := st.Answer(ctx, a); err != nil {
			return err
		}
		if a == End {
			return nil
		}
	}
}
