package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/tfproto"
)

func init() {
	registerFamily(family{name: "keepalive", commands: []command{
		{name: "KEEPALIVE", run: cmdKeepalive, access: preLogin},
	}})
}

// keepalive is a parsed KEEPALIVE request.
type keepalive struct {
	on               bool
	idle, intvl, cnt int
}

// parseKeepalive parses "on SP idle SP|SP intvl SP|SP cnt" (WIRE.md §5.22).
// Every field is a decimal int (an optional sign allowed; the kernel rejects
// negative values); anything else is malformed.
func parseKeepalive(args string) (keepalive, bool) {
	var k keepalive
	on, rest, ok := strings.Cut(args, " ")
	if !ok {
		return k, false
	}
	parts := strings.Split(rest, " | ")
	if len(parts) != 3 {
		return k, false
	}
	vals := make([]int, 4)
	for i, f := range append([]string{on}, parts...) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return k, false
		}
		vals[i] = int(v)
	}
	return keepalive{on: vals[0] != 0, idle: vals[1], intvl: vals[2], cnt: vals[3]}, true
}

// userTimeout is the reference's TCP_USER_TIMEOUT in ms: (idle+intvl*cnt)*1000-1.
func (k keepalive) userTimeout() (int, bool) {
	v := (int64(k.idle)+int64(k.intvl)*int64(k.cnt))*1000 - 1
	if v < 0 || v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}

// errKeepaliveRange is a user timeout that does not fit the socket option.
var errKeepaliveRange = errors.New("keepalive: user timeout out of range")

// apply sets the socket options on fd. With on false it clears SO_KEEPALIVE
// and TCP_USER_TIMEOUT.
func (k keepalive) apply(fd int) error {
	if !k.on {
		return errors.Join(
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0),
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 0))
	}
	ut, ok := k.userTimeout()
	if !ok {
		return errKeepaliveRange
	}
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, k.idle},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, k.intvl},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, k.cnt},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ut},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return fmt.Errorf("setsockopt %d/%d=%d: %w", o.level, o.opt, o.v, err)
		}
	}
	return nil
}

// keepaliveProbe, when set (tests), is called after KEEPALIVE with the options
// read back from the socket.
var keepaliveProbe atomic.Pointer[func(sockKeepalive)]

// sockKeepalive is the keepalive state of a socket as the kernel reports it.
type sockKeepalive struct {
	On                        bool
	Idle, Intvl, Cnt, UserTmo int
}

func readKeepalive(fd int) (sockKeepalive, error) {
	var k sockKeepalive
	var errs []error
	get := func(level, opt int) int {
		v, err := unix.GetsockoptInt(fd, level, opt)
		errs = append(errs, err)
		return v
	}
	k.On = get(unix.SOL_SOCKET, unix.SO_KEEPALIVE) != 0
	k.Idle = get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
	k.Intvl = get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
	k.Cnt = get(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	k.UserTmo = get(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	return k, errors.Join(errs...)
}

// KEEPALIVE on SP idle SP|SP intvl SP|SP cnt (WIRE.md §5.22): a malformed line
// answers FAILED 16; a value the kernel refuses (idle 0, say) switches
// keepalive off and answers FAILED 32. Allowed before LOGIN.
func cmdKeepalive(s *session, args string) error {
	k, ok := parseKeepalive(args)
	if !ok {
		return s.fail(tfproto.CodeMissingParam)
	}
	tc, ok := s.nc.(*net.TCPConn)
	if !ok {
		return s.fail(tfproto.CodeKeepalive)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return s.fail(tfproto.CodeKeepalive)
	}
	var aerr error
	cerr := raw.Control(func(fd uintptr) {
		aerr = k.apply(int(fd))
		if aerr != nil {
			keepalive{}.apply(int(fd))
		}
		if probe := keepaliveProbe.Load(); probe != nil {
			if got, err := readKeepalive(int(fd)); err == nil {
				(*probe)(got)
			}
		}
	})
	if err := errors.Join(cerr, aerr); err != nil {
		s.log.Debug("keepalive", "err", err)
		return s.fail(tfproto.CodeKeepalive)
	}
	return s.ok()
}
