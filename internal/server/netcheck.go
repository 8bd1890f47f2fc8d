package server

import (
	"context"
	"net"

	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/internal/udp"
)

// The netcheck family (WIRE.md §5.23, §6): the node-wide registry of process
// keys that PROCKEY fills and the UDP checks read, the UDP services on the TCP
// port's number, and the TCP out-of-band keepalive. It has no commands of its
// own: PROCKEY is a core command, KEEPALIVE belongs to the keepalive family.
func init() {
	registerFamily(family{
		name:         "netcheck",
		start:        startNetcheck,
		stop:         stopNetcheck,
		sessionStart: netcheckSessionStart,
		sessionEnd:   netcheckSessionEnd,
	})
}

// netcheckServer is the server-wide state of the netcheck family.
type netcheckServer struct {
	keys *udp.Registry
	oob  *udp.OOB // nil when epoll is unavailable
	udp  *udp.Handler
}

// netcheckSession is one session's part.
type netcheckSession struct {
	state     udp.Session
	removeOOB func()
}

func startNetcheck(s *Server) error {
	s.chk.keys = udp.NewRegistry()
	s.chk.udp = &udp.Handler{Sessions: s.chk.keys, Pool: func() tlb.Pool { return s.TLBPool() }, Log: s.log}
	oob, err := udp.NewOOB(s.log)
	if err != nil {
		// Not fatal: only the out-of-band keepalive is lost.
		s.log.Warn("out-of-band keepalive unavailable", "err", err)
		return nil
	}
	s.chk.oob = oob
	return nil
}

func stopNetcheck(s *Server) {
	if s.chk.oob != nil {
		s.chk.oob.Close()
	}
}

// netcheckSessionStart watches the socket for OOB bytes from the first byte
// on: the keepalive works before the handshake too.
func netcheckSessionStart(s *session) {
	// Reads take a pending urgent byte first (see udp.Conn), so none is lost
	// to an in-band read; nothing has been read yet, so s.conn can change.
	if c, err := udp.Conn(s.nc, &s.chk.state); err == nil {
		s.conn.SetSource(c)
	}
	if s.srv.chk.oob == nil {
		return
	}
	remove, err := s.srv.chk.oob.Add(s.nc, &s.chk.state)
	if err != nil {
		s.log.Debug("oob watch", "err", err)
		return
	}
	s.chk.removeOOB = remove
}

func netcheckSessionEnd(s *session) {
	if s.chk.removeOOB != nil {
		s.chk.removeOOB()
		s.chk.removeOOB = nil
	}
	if s.prockey != "" {
		s.srv.chk.keys.Unregister(s.prockey)
	}
}

// ServeUDP answers the UDP services (HOSTCHECK, PROCHECK, SOCKCHECK, UDP_TLB)
// on pc until ctx ends, then closes pc and returns nil. Bind pc to the TCP
// listener's port number.
func (s *Server) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	s.log.Info("listening (udp)", "addr", pc.LocalAddr().String())
	return s.chk.udp.Serve(ctx, pc)
}
