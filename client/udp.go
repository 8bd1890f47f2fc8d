package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// The UDP keepalive services (WIRE.md §6) answer on the UDP port with the same
// number as the server's TCP port. Datagrams are neither authenticated nor
// enciphered, and may be lost: a function here returns an error when no answer
// came before ctx's deadline (2 s without one), and callers retry as they see fit.

// DefaultUDPTimeout bounds a UDP check whose ctx has no deadline.
const DefaultUDPTimeout = 2 * time.Second

// ErrNoTuple is UDP_TLB's failure answer (the server has no tuple to give).
var ErrNoTuple = errors.New("client: UDP_TLB: no tuple")

// udpAsk sends pkt to addr and returns the first answer.
func udpAsk(ctx context.Context, addr string, pkt []byte) ([]byte, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: udp %s: %w", addr, err)
	}
	defer nc.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultUDPTimeout)
	}
	nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := nc.Write(pkt); err != nil {
		return nil, fmt.Errorf("client: udp %s: %w", addr, err)
	}
	buf := make([]byte, 512)
	n, err := nc.Read(buf)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("client: udp %s: no answer: %w", addr, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("client: udp %s: empty answer", addr)
	}
	return buf[:n], nil
}

// HostCheck sends UDP_HOSTCHECK: nil means the server answered, so its address
// and port are reachable (not that any TCP session still works).
func HostCheck(ctx context.Context, addr string) error {
	r, err := udpAsk(ctx, addr, []byte{0})
	if err != nil {
		return err
	}
	if r[0] != 1 {
		return fmt.Errorf("client: HOSTCHECK answer %q", r)
	}
	return nil
}

// ProcCheck sends UDP_PROCHECK for a session's PROCKEY: true while that
// session lives.
func ProcCheck(ctx context.Context, addr, key string) (bool, error) {
	r, err := udpAsk(ctx, addr, append([]byte{1}, key...))
	if err != nil {
		return false, err
	}
	return r[0] == 1, nil
}

// SockCheck sends UDP_SOCKCHECK for a session's PROCKEY and returns how many
// out-of-band bytes that session's socket has received (alive false: no such
// session).
func SockCheck(ctx context.Context, addr, key string) (count uint32, alive bool, err error) {
	r, err := udpAsk(ctx, addr, append([]byte{2}, key...))
	if err != nil {
		return 0, false, err
	}
	if r[0] != 1 {
		return 0, false, nil
	}
	digits := bytes.TrimRight(r[1:], "\x00")
	// tfd prints the counter unsigned; the reference prints it signed.
	if v, perr := strconv.ParseUint(string(digits), 10, 32); perr == nil {
		return uint32(v), true, nil
	}
	v, perr := strconv.ParseInt(string(digits), 10, 32)
	if perr != nil {
		return 0, false, fmt.Errorf("client: SOCKCHECK answer %q", r)
	}
	return uint32(v), true, nil
}

// UDPTLB sends UDP_TLB and returns a tuple such as "4 10.0.0.1;10346". It
// accepts tfd's answer (status, space, tuple) and the reference's (status,
// tuple, NUL).
func UDPTLB(ctx context.Context, addr string) (string, error) {
	r, err := udpAsk(ctx, addr, []byte{3})
	if err != nil {
		return "", err
	}
	if r[0] != 1 {
		return "", ErrNoTuple
	}
	t := bytes.TrimRight(r[1:], "\x00")
	t = bytes.TrimPrefix(t, []byte(" "))
	return string(t), nil
}
