package main

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// crossNodeAddr finds, through TLB on the -addr server, another node of its
// cluster for `tf bench gateway -cross-node`: a cluster's TLB answers with
// the least-loaded node and counts each answer, so a few asks go round every
// node. It returns the first node whose address differs from -addr.
func crossNodeAddr(ctx context.Context, e *env) (string, error) {
	c, err := e.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	self, err := net.ResolveTCPAddr("tcp", e.conn.addr)
	if err != nil {
		return "", fmt.Errorf("-addr: %w", err)
	}
	var seen []string
	for range 32 {
		tuple, err := c.TLB(ctx)
		if err != nil {
			return "", fmt.Errorf("-cross-node asks the server's TLB for another node: %w", err)
		}
		addr, err := tupleAddr(tuple)
		if err != nil {
			return "", err
		}
		ta, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("TLB answered %q: %w", tuple, err)
		}
		if !ta.IP.Equal(self.IP) || ta.Port != self.Port {
			return addr, nil
		}
		seen = append(seen, tuple)
	}
	return "", fmt.Errorf("-cross-node: TLB of %s only answers with itself (%s): is it part of a cluster?", e.conn.addr, strings.Join(seen[:1], ""))
}

// tupleAddr turns a TLB tuple "4 ip;port" or "6 ip;port" into "ip:port".
func tupleAddr(tuple string) (string, error) {
	fam, rest, ok := strings.Cut(tuple, " ")
	host, port, ok2 := strings.Cut(rest, ";")
	if !ok || !ok2 || (fam != "4" && fam != "6") || host == "" || port == "" {
		return "", fmt.Errorf("TLB tuple %q: want \"4 ip;port\" or \"6 ip;port\"", tuple)
	}
	return net.JoinHostPort(host, port), nil
}
