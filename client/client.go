// Package client is the Go client library for TFProtocol 2.4.1 servers (tfd or
// the reference daemon): Dial runs the handshake, and each protocol command is a
// method returning typed results, or a *tfproto.Error carrying the FAILED code.
//
// A Client is one session. Its methods may be called from several goroutines;
// they run one at a time. Every method takes a context: its deadline bounds the
// command, and cancelling it aborts the command and leaves the session unusable
// (the stream is out of step), as a broken connection would.
package client

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// Error is the FAILED reply type; use errors.As to get the code.
type Error = tfproto.Error

// Options says how to reach and authenticate to a server.
type Options struct {
	// Proto is the protocol version string (the server's "proto"); default "0.0".
	Proto string
	// Hash is the hash identity (the server's "hash"); default "testhash".
	Hash string
	// PublicKeyPEM is the server's RSA-2048 public key in PEM form. PublicKey,
	// when set, is used instead.
	PublicKeyPEM []byte
	PublicKey    *rsa.PublicKey
	// KeyLen is the session-key length, 16..214; default 32.
	KeyLen int
	// Dialer dials the TCP connection; default a net.Dialer.
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// Client is one TFProtocol session.
type Client struct {
	mu     sync.Mutex
	nc     net.Conn
	conn   *tfproto.Conn
	broken error
	key    []byte
	gw     *Gateway // the open gateway, if any (gateway.go)
}

// ErrBroken is returned after a cancelled or failed exchange left the session
// out of step.
var ErrBroken = errors.New("client: session is broken")

// Dial connects to addr and runs the handshake within ctx.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	pub := opts.PublicKey
	if pub == nil {
		if len(opts.PublicKeyPEM) == 0 {
			return nil, errors.New("client: no server public key")
		}
		k, err := tfproto.ParsePublicKeyPEM(opts.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		pub = k
	}
	if opts.Proto == "" {
		opts.Proto = "0.0"
	}
	if opts.Hash == "" {
		opts.Hash = "testhash"
	}
	if opts.KeyLen == 0 {
		opts.KeyLen = 32
	}
	key, err := tfproto.NewSessionKey(nil, opts.KeyLen)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var d interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	} = &net.Dialer{}
	if opts.Dialer != nil {
		d = opts.Dialer
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &Client{nc: nc, conn: tfproto.NewConn(nc), key: key}
	// Servers that send a header and its body in two writes (the reference)
	// would otherwise wait for our delayed ACK on every reply.
	c.conn.AfterRead = tfproto.QuickAck(nc)
	err = c.exchange(ctx, func() error {
		return tfproto.ClientHandshake(c.conn, opts.Proto, opts.Hash, pub, key)
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: handshake with %s: %w", addr, err)
	}
	return c, nil
}

// Conn returns the framed connection, for protocol extensions built on this
// client. Use it only inside Exchange.
func (c *Client) Conn() *tfproto.Conn { return c.conn }

// SessionKey returns a copy of the session key.
func (c *Client) SessionKey() []byte { return append([]byte(nil), c.key...) }

// Close sends END and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.gw; g != nil {
		// Stop the gateway's reader before the Conn is released.
		c.nc.Close()
		g.abort()
	}
	if c.broken == nil {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.conn.WriteFrameString("END")
		c.broken = net.ErrClosed
	}
	return c.conn.Close()
}

// Exchange runs f, one complete protocol exchange, alone on the session under
// ctx's deadline and cancellation. If f fails with anything but a FAILED or
// UNKNOWN reply, the session is marked broken.
func (c *Client) Exchange(ctx context.Context, f func(conn *tfproto.Conn) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	return c.exchange(ctx, func() error { return f(c.conn) })
}

func (c *Client) exchange(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	stop := afterFuncWait(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() && ctx.Err() != nil {
		err = errors.Join(ctx.Err(), err)
	}
	c.nc.SetDeadline(time.Time{})
	var fe *tfproto.Error
	if err != nil && !errors.As(err, &fe) && !errors.Is(err, tfproto.ErrUnknownCommand) {
		c.broken = err
	}
	return err
}

// afterFuncWait is context.AfterFunc whose stop, when f was already started,
// waits until f has returned. A deadline the caller resets after stop is then
// final: f cannot set its own afterwards.
func afterFuncWait(ctx context.Context, f func()) (stop func() bool) {
	done := make(chan struct{})
	stopF := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	return func() bool {
		if stopF() {
			return true
		}
		<-done
		return false
	}
}

// Do sends one command line and returns the server's framed reply as a Status.
// A FAILED or UNKNOWN reply is returned as the Status, not as an error.
func (c *Client) Do(ctx context.Context, line string) (tfproto.Status, error) {
	var st tfproto.Status
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString(line); err != nil {
			return err
		}
		body, err := conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			return err
		}
		st = tfproto.ParseStatus(append([]byte(nil), body...))
		return nil
	})
	return st, err
}

// command sends a command and returns the payload after "OK ", turning FAILED
// and UNKNOWN replies into errors.
func (c *Client) command(ctx context.Context, line string) (string, error) {
	st, err := c.Do(ctx, line)
	if err != nil {
		return "", err
	}
	if err := st.Err(); err != nil {
		return "", err
	}
	if st.Kind != tfproto.KindOK {
		return "", fmt.Errorf("client: unexpected reply %q to %s", truncate(string(st.Raw), 60), firstWord(line))
	}
	return st.Text, nil
}

func firstWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i]
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
