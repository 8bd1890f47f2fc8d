package server

import (
	"fmt"
	"time"

	"github.com/tfd-project/tfd/internal/gateway"
	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/tfproto"
)

// The gateway family: XS_GATEWAY, the peer relay (xs-gateway.txt, WIRE.md §7,
// §P row 15). The relay core — identity registry, per-peer bounded queue and
// writer, drop accounting — lives in internal/gateway; this file is the wire
// protocol around it.
func init() {
	registerFamily(family{
		name:     "gateway",
		commands: []command{{name: "XS_GATEWAY", run: cmdXSGateway}},
		start:    startGateway,
		stop:     stopGateway,
	})
}

// Status codes local to XS_GATEWAY (WIRE.md §4.2): their texts differ from the
// main table, so they are sent with tfproto.FailedLine.
const (
	gwCodeInternal tfproto.Code = 1 // "Internal error occurred."
	gwCodeIdentity tfproto.Code = 2 // "Failed creating identity."
)

// gatewayServer is the gateway family's per-server state.
type gatewayServer struct {
	ctr    gateway.Counters
	limits gateway.Limits
	// local is the in-process bus made at start when no WithBus option gave
	// one; the family closes it at stop. A bus given by WithBus belongs to
	// the caller.
	local *gateway.LocalBus
}

// WithGatewayLimits sets the per-peer send-queue bounds and write timeout
// (zero fields keep the defaults of gateway.Limits).
func WithGatewayLimits(l gateway.Limits) Option {
	return func(s *Server) { s.gw.limits = l }
}

// GatewayStats returns a snapshot of the gateway's counters: messages
// received and delivered, drops by reason, registrations, evictions and the
// number of peers inside the gateway.
func (s *Server) GatewayStats() gateway.Stats { return s.gw.ctr.Stats() }

// GatewayCounters returns the counters behind GatewayStats, for a Bus that
// sees drops no sender's Send can report (a cluster node delivering to its
// local peers on behalf of another node) to count them with Drop.
func (s *Server) GatewayCounters() *gateway.Counters { return &s.gw.ctr }

func startGateway(s *Server) error {
	s.gw.limits = s.gw.limits.WithDefaults()
	if s.bus == nil {
		s.gw.local = gateway.NewLocalBus()
		s.bus = s.gw.local
	}
	s.metrics.MustRegister(gateway.NewCollector(s.GatewayStats))
	return nil
}

func stopGateway(s *Server) {
	if s.gw.local != nil {
		s.gw.local.Close()
	}
}

// XS_GATEWAY: framed OK, then the framed identity and its framed status, then
// the relay loop until the client sends -1 (no reply; command mode again) or
// the connection ends.
//
// Decisions where the spec and WIRE.md leave room:
//   - identities are exact byte strings, 1..gateway.MaxIdentity (4096) bytes;
//     an empty or longer one (up to 524287, read to keep the cipher in step)
//     gets FAILED 2 : Failed creating identity. and the session stays in
//     command mode; a header over 524287 or negative closes the session;
//   - a zero-length message is delivered as an empty frame, hdr32(0), as the
//     reference does; a negative message size drops the message (counted);
//   - the gateway loop has no idle timeout (peers may just listen); a receiver
//     that accepts no bytes for gateway.Limits.WriteTimeout is disconnected;
//   - messages still queued for a peer when it leaves are dropped (counted),
//     so nothing is written after the -1 has been read.
func cmdXSGateway(s *session, _ string) (err error) {
	if err := s.ok(); err != nil {
		return err
	}
	id, ok, err := gateway.ReadIdentity(s.conn)
	if err != nil {
		return err
	}
	if !ok {
		return s.gwFail(gwCodeIdentity, tfproto.GatewayIdentityFailed)
	}
	gs := &s.srv.gw
	ob := gateway.NewOutbox(s.deliver, gs.limits, &gs.ctr)
	detach, aerr := s.srv.bus.Attach(id, ob)
	if aerr != nil {
		ob.Close()
		s.log.Error("gateway: registering identity", "err", aerr)
		return s.gwFail(gwCodeInternal, tfproto.GatewayInternalError)
	}
	gs.ctr.Joined()
	s.log.Debug("gateway: joined", "identity_len", len(id))
	defer func() {
		// Release the identity first, so nobody queues for us any more.
		detach()
		if err != nil {
			// The session is ending (disconnect, protocol error, shutdown):
			// break any write in progress instead of waiting for it.
			s.nc.Close()
		}
		werr := ob.Close()
		s.nc.SetWriteDeadline(time.Time{})
		gs.ctr.Left()
		if err == nil && werr != nil {
			// A delivery failed midway: the stream is out of step.
			err = werr
		}
		s.log.Debug("gateway: left", "err", err)
	}()
	if err := s.ok(); err != nil {
		return err
	}
	ob.Start()
	return s.gatewayLoop()
}

// gwFail sends one of the gateway's own FAILED lines and counts it.
func (s *session) gwFail(code tfproto.Code, text string) error {
	s.result = metrics.FailedResult(int(code))
	return s.conn.WriteFrameString(tfproto.FailedLine(code, text))
}

// gatewayLoop relays the client's messages until -1 (nil) or an error.
func (s *session) gatewayLoop() error {
	gs := &s.srv.gw
	for {
		req, err := gateway.ReadRequest(s.conn)
		if err != nil {
			return err
		}
		switch req.Kind {
		case gateway.Leave:
			return nil
		case gateway.Ignore:
			continue
		case gateway.Invalid:
			gs.ctr.Received(1)
			gs.ctr.Drop(gateway.ErrInvalidSize, 1)
		case gateway.Message:
			gs.ctr.Received(1)
			if len(req.Dest) > gateway.MaxIdentity {
				// Nobody can hold it; spare the bus the lookup.
				gs.ctr.Drop(gateway.ErrUnknownIdentity, 1)
				continue
			}
			if err := s.srv.bus.Send(req.Dest, req.Msg); err != nil {
				gs.ctr.Drop(err, 1)
			}
		}
	}
}

// deliver is the session's Outbox write function, run by the writer
// goroutine: each message becomes one framed message, the batch one write
// under the write timeout. A failed write leaves the stream out of step, so it
// closes the connection, which ends the session's read loop too.
func (s *session) deliver(batch [][]byte) error {
	s.nc.SetWriteDeadline(time.Now().Add(s.srv.gw.limits.WriteTimeout))
	if err := s.conn.WriteFrames(batch...); err != nil {
		s.nc.Close()
		return fmt.Errorf("gateway delivery: %w", err)
	}
	return nil
}
