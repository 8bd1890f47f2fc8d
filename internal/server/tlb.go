package server

import (
	"errors"
	"net"
	"strconv"

	"github.com/tfd-project/tfd/internal/tlb"
	"github.com/tfd-project/tfd/tfproto"
)

// The TLB family: the Transfer Load Balancer's TCP command (WIRE.md §5.36).
// The pool is the one given with WithTLBPool (the cluster's), else the
// configured tlb file, read once at start (see tlb.FilePool); UDP_TLB answers
// from the same pool through Server.TLBPool.
func init() {
	registerFamily(family{name: "tlb", start: startTLB, commands: []command{
		{name: "TLB", run: cmdTLB},
	}})
}

// tlbSession is a session's TLB state: its own rotation through the pool, made
// on the first TLB so every connection starts at the pool's first tuple.
type tlbSession struct {
	picker tlb.Picker
}

// startTLB builds the file pool when no pool was given and cfg.TLB is set. A
// missing or unreadable file is not fatal: TLB answers FAILED 52 until the
// file is reloaded (ReloadTLB), as the reference does.
func startTLB(s *Server) error {
	if s.tlbPool != nil || s.cfg.TLB == "" {
		return nil
	}
	p := tlb.NewFilePool(s.cfg.TLB, tlbPort(s))
	if n, err := p.Reload(); err != nil {
		s.log.Warn("TLB pool file unreadable; TLB answers FAILED 52", "file", s.cfg.TLB, "err", err)
	} else {
		s.log.Info("TLB pool loaded", "file", s.cfg.TLB, "tuples", n)
	}
	s.tlbPool = p
	return nil
}

// tlbPort is the port README-style pool lines ("ipv4: host") are completed
// with: the configured port, else the listen address's ("" when neither names
// one).
func tlbPort(s *Server) string {
	if s.cfg.Port != 0 {
		return strconv.Itoa(s.cfg.Port)
	}
	if _, p, err := net.SplitHostPort(s.cfg.Listen); err == nil && p != "0" {
		return p
	}
	return ""
}

// ReloadTLB re-reads the tlb pool file when the server answers from one; it
// returns the number of tuples loaded. It is a no-op (0, nil) for other pools.
func (s *Server) ReloadTLB() (int, error) {
	if p, ok := s.tlbPool.(*tlb.FilePool); ok {
		return p.Reload()
	}
	return 0, nil
}

// TLB: "OK <tuple>" with the session's next tuple; FAILED 52 when there is no
// pool or it is empty. Arguments are ignored, as in the reference.
func cmdTLB(s *session, _ string) error {
	pool := s.srv.tlbPool
	if pool == nil {
		return s.fail(tfproto.CodeTLB)
	}
	if s.tlb.picker == nil {
		s.tlb.picker = pool.NewPicker()
	}
	tuple, err := s.tlb.picker.Next()
	if err != nil {
		if !errors.Is(err, tlb.ErrEmpty) {
			s.log.Warn("TLB pool", "err", err)
		}
		return s.fail(tfproto.CodeTLB)
	}
	return s.okText(tuple)
}
