package proxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// Zero-copy relaying. io.Copy between two *net.TCPConn already splices on
// Linux (TCPConn.WriteTo falls back to the destination's ReadFrom, which
// splices from a TCP source), but it offers no hook between reads, and the
// proxy needs one: it must re-arm TCP_QUICKACK on the socket it reads from
// after every read. Without that, a client that sends a frame's header and its
// body in two writes with Nagle on (the official Python client does) waits for
// the proxy's delayed ACK of the header, about 40 ms per command; the server
// re-arms QUICKACK for the same reason (ARCHITECTURE.md decision 3). So the
// proxy drives splice(2) itself, through a pipe, on Go's poller (RawConn).

// pipeSize is what a pipe is grown to; one splice moves at most this much.
const pipeSize = 1 << 20

// maxSplice is the most one splice call asks for.
const maxSplice = pipeSize

// splicePipe is the kernel pipe one relay direction splices through.
type splicePipe struct{ r, w int }

// newSplicePipe returns a pipe, or nil when none can be made (the caller then
// copies through user space).
func newSplicePipe() *splicePipe {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	// Best effort: a smaller pipe only means more splice calls.
	unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	return &splicePipe{r: fds[0], w: fds[1]}
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// relay splices src to dst until a splice from src moves nothing, which
// happens at src's end of stream and at an urgent mark (the caller tells them
// apart; n is 0 in both cases). Every chunk read into the pipe is written out before the next read,
// so the pipe is empty whenever relay returns.
func (p *splicePipe) relay(dst, src *net.TCPConn) (int64, error) {
	srcRC, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	dstRC, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		var n int64
		var serr error
		err := srcRC.Read(func(fd uintptr) bool {
			for {
				n, serr = unix.Splice(int(fd), nil, p.w, nil, maxSplice, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				if serr != unix.EINTR {
					break
				}
			}
			if serr == unix.EAGAIN {
				// Nothing to read, or stuck at an urgent mark: TCP splice
				// never moves past a mark, and a non-blocking splice there
				// says EAGAIN even with data behind it. The caller's
				// ordinary read gets past it.
				if mark, err := unix.IoctlGetInt(int(fd), unix.SIOCATMARK); err == nil && mark == 1 {
					n, serr = 0, nil
					return true
				}
				return false // wait until src is readable
			}
			if n > 0 {
				quickAck(int(fd))
			}
			return true
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		for n > 0 {
			var m int64
			var werr error
			err := dstRC.Write(func(fd uintptr) bool {
				for {
					m, werr = unix.Splice(p.r, nil, int(fd), nil, int(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
					if werr != unix.EINTR {
						break
					}
				}
				return werr != unix.EAGAIN // else wait until dst is writable
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				return total, err
			}
			n -= m
			total += m
		}
	}
}

// quickAck asks the kernel to acknowledge what was just read at once instead
// of delaying the ACK (Linux clears the flag by itself, hence after every
// read).
func quickAck(fd int) { unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }
