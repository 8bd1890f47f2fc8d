package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// Gateway errors.
var (
	// ErrGatewayActive is the reason other commands fail while the session is
	// inside the gateway (until Gateway.Close).
	ErrGatewayActive = errors.New("client: session is inside XS_GATEWAY")
	// ErrGatewayClosed is returned by Send and Recv after Close.
	ErrGatewayClosed = errors.New("client: gateway closed")
)

// MaxGatewayMessage is the largest destination or message the gateway
// carries (the communication buffer minus one, WIRE.md §7).
const MaxGatewayMessage = tfproto.MaxFrame - 1

// gatewayLeaveTimeout bounds Close.
const gatewayLeaveTimeout = 30 * time.Second

// Gateway is a session inside XS_GATEWAY, registered under an identity: it
// sends messages to other identities and receives theirs. Received messages
// carry no sender identity (peers embed one themselves if they need it); the
// relay is best effort and sends no acknowledgements.
//
// Send and Recv may be called from several goroutines. While the Gateway is
// open the Client's other methods fail with ErrGatewayActive; Close returns
// the session to command mode.
type Gateway struct {
	c     *Client
	conn  *tfproto.Conn
	nonce string

	msgs chan []byte
	done chan struct{} // closed when the reader has returned
	rerr error         // why the reader returned (valid after done)
	left bool          // the reader saw the end of the gateway (after done)

	mu      sync.RWMutex // Send holds it shared; Close exclusively
	quit    chan struct{}
	closing bool

	kill     chan struct{} // closed by Client.Close: the reader must stop
	killOnce sync.Once

	closeOnce sync.Once
	closeErr  error
}

// Gateway enters XS_GATEWAY and registers identity, the name other peers
// send to. The newest registration of an identity wins: an older session
// holding it silently stops receiving. A FAILED reply (for instance
// "FAILED 2 : Failed creating identity." for an empty identity or one longer
// than the server accepts, 4096 bytes for tfd) is returned as *Error, and the
// session stays usable for commands.
func (c *Client) Gateway(ctx context.Context, identity string) (*Gateway, error) {
	if len(identity) > tfproto.MaxFrame {
		return nil, fmt.Errorf("client: gateway identity of %d bytes is too long", len(identity))
	}
	var nb [16]byte
	rand.Read(nb[:])
	g := &Gateway{
		c: c, conn: c.conn, nonce: "tfgw-leave-" + hex.EncodeToString(nb[:]),
		msgs: make(chan []byte, 256), done: make(chan struct{}), quit: make(chan struct{}), kill: make(chan struct{}),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	err := c.exchange(ctx, func() error {
		for _, body := range []string{"XS_GATEWAY", identity} {
			if err := c.conn.WriteFrameString(body); err != nil {
				return err
			}
			if err := readReply(c.conn, "XS_GATEWAY", tfproto.KindOK); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.broken = ErrGatewayActive
	c.gw = g
	go g.read()
	return g, nil
}

// read receives deliveries until the end of the gateway (the reply to the
// ECHO Close sends after -1) or an error.
func (g *Gateway) read() {
	defer close(g.done)
	for {
		b, err := g.conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			g.rerr = err
			return
		}
		select {
		case <-g.quit:
			if string(b) == g.nonce {
				g.left = true
				return
			}
			continue // leaving: late deliveries are discarded
		default:
		}
		m := append([]byte{}, b...)
		select {
		case g.msgs <- m:
		case <-g.quit:
			if string(b) == g.nonce {
				g.left = true
				return
			}
		case <-g.kill:
			g.rerr = net.ErrClosed
			return
		}
	}
}

// abort stops the reader for Client.Close (the connection is being closed).
func (g *Gateway) abort() {
	g.killOnce.Do(func() { close(g.kill) })
	<-g.done
}

// Send relays msg to the peer registered as dest. Delivery is best effort: a
// message to an unknown identity, or to a receiver whose queue is full, is
// dropped by the server without notice. dest must be 1..524287 bytes, msg at
// most 524287 bytes (an empty message is delivered as an empty one).
func (g *Gateway) Send(dest string, msg []byte) error {
	if dest == "" {
		return errors.New("client: gateway destination is empty")
	}
	if len(dest) > MaxGatewayMessage || len(msg) > MaxGatewayMessage {
		return fmt.Errorf("client: gateway destination or message over %d bytes", MaxGatewayMessage)
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closing {
		return ErrGatewayClosed
	}
	err := g.conn.WriteFields(tfproto.Int32Field(int32(len(dest))), []byte(dest), tfproto.Int32Field(int32(len(msg))), msg)
	if err != nil {
		return fmt.Errorf("client: gateway send: %w", err)
	}
	return nil
}

// Recv returns the next message delivered to this peer, waiting until one
// arrives, ctx ends or the gateway ends (ErrGatewayClosed after Close,
// otherwise the connection error).
func (g *Gateway) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-g.msgs:
		return m, nil
	case <-g.done:
		select {
		case m := <-g.msgs:
			return m, nil
		default:
		}
		if g.left {
			return nil, ErrGatewayClosed
		}
		return nil, fmt.Errorf("client: gateway receive: %w", g.rerr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close leaves the gateway: it sends the -1 header, then waits until every
// delivery the server wrote before leaving has been read (it sends an ECHO
// with a random token and reads up to its reply; messages arriving meanwhile
// are discarded). The session is then back in command mode. If leaving fails
// the session is marked broken and the error returned. Close may be called
// more than once.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closing = true
		close(g.quit)
		g.mu.Unlock()
		nc := g.c.nc
		nc.SetDeadline(time.Now().Add(gatewayLeaveTimeout))
		err := g.conn.WriteInt32(-1)
		if err == nil {
			err = g.conn.WriteFrameString("ECHO " + g.nonce)
		}
		<-g.done
		if err == nil && !g.left {
			err = g.rerr
		}
		g.c.mu.Lock()
		if g.c.gw == g {
			g.c.gw = nil
		}
		if err == nil {
			nc.SetDeadline(time.Time{})
			g.c.broken = nil
		} else if g.c.broken == ErrGatewayActive {
			g.c.broken = err
		}
		g.c.mu.Unlock()
		if err != nil {
			g.closeErr = fmt.Errorf("client: leaving the gateway: %w", err)
		}
	})
	return g.closeErr
}
