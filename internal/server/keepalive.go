package server

import (
	"context"
	"net"

	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/internal/udp"
	"github.com/tfd-project/tfd/tfproto"
)

// The keepalive family (WIRE.md §5.23, §6): the node-wide registry of process
// keys that PROCKEY fills and the UDP checks read, the UDP services on the TCP
// port's number, and the TCP out-of-band keepalive. It has no commands of its
// own: PROCKEY is a core command and KEEPALIVE sets socket options.
func init() {
	registerFamily(family{
		name:         "keepalive",
		start:        startKeepalive,
		stop:         stopKeepalive,
		sessionStart: keepaliveSessionStart,
		sessionEnd:   keepaliveSessionEnd,
	})
}

// keepaliveServer is the server-wide state of the keepalive family.
type keepaliveServer struct {
	keys *udp.Registry
	oob  *udp.OOB // nil when epoll is unavailable
	udp  *udp.Handler
}

// keepaliveSession is one session's part.
type keepaliveSession struct {
	state     udp.Session
	removeOOB func()
}

func startKeepalive(s *Server) error {
	s.ka.keys = udp.NewRegistry()
	s.ka.udp = &udp.Handler{Sessions: s.ka.keys, Pool: func() tlb.Pool { return s.TLBPool() }, Log: s.log}
	oob, err := udp.NewOOB(s.log)
	if err != nil {
		// Not fatal: only the out-of-band keepalive is lost.
		s.log.Warn("out-of-band keepalive unavailable", "err", err)
		return nil
	}
	s.ka.oob = oob
	return nil
}

func stopKeepalive(s *Server) {
	if s.ka.oob != nil {
		s.ka.oob.Close()
	}
}

// keepaliveSessionStart watches the socket for OOB bytes from the first byte
// on: the keepalive works before the handshake too.
func keepaliveSessionStart(s *session) {
	// Reads take a pending urgent byte first (see udp.Conn), so none is lost
	// to an in-band read; nothing has been read yet, so s.conn can change.
	if c, err := udp.Conn(s.nc, &s.ka.state); err == nil {
		s.conn = tfproto.NewConn(c)
	}
	if s.srv.ka.oob == nil {
		return
	}
	remove, err := s.srv.ka.oob.Add(s.nc, &s.ka.state)
	if err != nil {
		s.log.Debug("oob watch", "err", err)
		return
	}
	s.ka.removeOOB = remove
}

func keepaliveSessionEnd(s *session) {
	if s.ka.removeOOB != nil {
		s.ka.removeOOB()
		s.ka.removeOOB = nil
	}
	if s.prockey != "" {
		s.srv.ka.keys.Unregister(s.prockey)
	}
}

// ServeUDP answers the UDP services (HOSTCHECK, PROCHECK, SOCKCHECK, UDP_TLB)
// on pc until ctx ends, then closes pc and returns nil. Bind pc to the TCP
// listener's port number.
func (s *Server) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	s.log.Info("listening (udp)", "addr", pc.LocalAddr().String())
	return s.ka.udp.Serve(ctx, pc)
}
