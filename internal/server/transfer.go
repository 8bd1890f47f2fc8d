package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// The transfer family: SNDFILE, SUP, SDOWN, FSIZE, FSIZELS and SHA256
// (WIRE.md §5.13, §5.32, §5.37–5.40). NIGMA and KEEPALIVE live in nigma.go and
// keepalive.go.
func init() {
	registerFamily(family{name: "transfer", commands: []command{
		{name: "SNDFILE", run: cmdSndFile},
		{name: "SUP", run: cmdSup},
		{name: "SDOWN", run: cmdSdown},
		{name: "FSIZE", run: cmdFSize},
		{name: "FSIZELS", run: cmdFSizeLs},
		{name: "SHA256", run: cmdSHA256},
	}})
}

// Transfer codes of the raw (unframed) replies.
const (
	rawEOF        = 0  // SUP/SDOWN end of data, SUP success
	rawFailed     = -1 // SUP/SDOWN failure; FSIZE jail or stat failure
	rawNotRegular = -2 // FSIZE: not a regular file
	rawListEnd    = -3 // FSIZELS: end of the list
)

// errProtocol marks a client message that puts the stream out of step.
var errProtocol = errors.New("protocol error")

// isNoSpace reports a full disk or an exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// openRegular opens rel for reading through the session root without blocking
// on FIFOs or devices, and fails unless it is a regular file.
func (s *session) openRegular(rel string) (*os.File, error) {
	f, err := s.fs.Root().OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: rel, Err: syscall.EISDIR}
	}
	return f, nil
}

// SNDFILE flag SP path: the client sends a file with the CONT/OK/BREAK loop
// (WIRE.md §5.13). The data is staged and published only on the client's OK.
//
// Decisions: an empty path names the root, a directory (FAILED 8). A target
// that is a symlink is replaced by the new file, never written through (a link
// leading out of the jail answers FAILED 1). A target that is neither a regular
// file nor a symlink (FIFO, socket, device) answers FAILED 7. A write error
// other than a full disk answers FAILED 7 and ends the flow (the reference drops
// the connection); the client waits for a reply after each chunk, so the
// session stays in step.
func cmdSndFile(s *session, args string) error {
	flag, p, ok := strings.Cut(args, " ")
	if !ok {
		return s.fail(tfproto.CodeMissingParam)
	}
	overwrite := flag == "1"
	rel, ok := s.resolve(p)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if rel != "." && s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	if code, ok := s.checkTarget(rel, overwrite); !ok {
		return s.fail(code)
	}
	start := time.Now()
	st, err := s.stage(rel)
	if err != nil {
		s.log.Debug("sndfile stage", "path", rel, "err", err)
		return s.failErr(err, tfproto.CodeTransferAPI)
	}
	defer st.abort()
	for {
		if err := s.conn.WriteFrameString(tfproto.Cont); err != nil {
			return err
		}
		s.armIdle()
		body, err := s.conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			return err
		}
		tok, data, hasSP := bytes.Cut(body, []byte{' '})
		switch {
		case string(tok) == tfproto.Break:
			st.abort()
			return s.ok()
		case string(tok) == tfproto.OK:
			if err := st.publish(overwrite); err != nil {
				return s.failPublish(rel, err)
			}
			s.srv.metrics.Transfer("SNDFILE", time.Since(start), st.size)
			return s.ok()
		case !hasSP:
			return fmt.Errorf("SNDFILE: %w: chunk message without a space", errProtocol)
		}
		if err := st.write(data); err != nil {
			st.abort()
			s.log.Warn("sndfile write", "path", rel, "err", err)
			if isNoSpace(err) {
				return s.fail(tfproto.CodeQuota)
			}
			return s.fail(tfproto.CodeTransferAPI)
		}
	}
}

// checkTarget applies SNDFILE's checks on an existing target, in the
// reference's order: 12 (exists, no overwrite), 8 (directory).
func (s *session) checkTarget(rel string, overwrite bool) (tfproto.Code, bool) {
	if rel == "." {
		if !overwrite {
			return tfproto.CodeFileExists, false
		}
		return tfproto.CodeIsDirectory, false
	}
	root := s.fs.Root()
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, true
	case err != nil && vfs.IsEscape(err):
		return tfproto.CodeAccessDenied, false
	case err != nil:
		// ENOTDIR (a file in the middle of the path) and the like: the
		// file cannot be opened.
		return tfproto.CodeTransferAPI, false
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := root.Stat(rel)
		switch {
		case err == nil:
			fi = target
		case vfs.IsEscape(err):
			return tfproto.CodeAccessDenied, false
		default:
			fi = nil // dangling: replaced like a file
		}
	}
	if !overwrite {
		return tfproto.CodeFileExists, false
	}
	switch {
	case fi == nil, fi.Mode().IsRegular():
		return 0, true
	case fi.IsDir():
		return tfproto.CodeIsDirectory, false
	}
	return tfproto.CodeTransferAPI, false
}

// failPublish answers a failed publish.
func (s *session) failPublish(rel string, err error) error {
	switch {
	case errors.Is(err, errTargetExists):
		return s.fail(tfproto.CodeFileExists)
	case errors.Is(err, errTargetIsDir):
		return s.fail(tfproto.CodeIsDirectory)
	case isNoSpace(err):
		return s.fail(tfproto.CodeQuota)
	}
	s.log.Warn("publish", "path", rel, "err", err)
	return s.failErr(err, tfproto.CodeTransferAPI)
}

// armIdle bounds the wait for the client's next transfer message by the idle
// timeout, as between commands: a client that stalls mid-upload is dropped and
// its staged data discarded. (The command loop re-arms the deadline before the
// next command.)
func (s *session) armIdle() {
	if idle := s.srv.Config().IdleTimeout; idle > 0 {
		s.nc.SetReadDeadline(time.Now().Add(idle))
	}
}

// SUP path: the client streams raw chunks at once, with no reply before the
// data (WIRE.md §5.38): hdr32(n) and n bytes, 0 < n ≤ 524288, then hdr32(0)
// (end: the server answers hdr32(0) on success or hdr32(-1)) or a negative
// header (cancel: staged data discarded, no answer). After any failure the
// server keeps reading and discarding until the client's end. The file is
// published atomically, replacing an existing file (the target checks are
// SNDFILE's with overwrite: a directory, FIFO, device or escaping symlink
// fails). Locks are ignored. A chunk header above 524288 is a protocol error
// and closes the connection.
func cmdSup(s *session, args string) error {
	var st *staged
	failed := false
	start := time.Now()
	if rel, ok := s.resolve(args); !ok {
		failed = true
	} else if _, ok := s.checkTarget(rel, true); !ok {
		failed = true
	} else if st2, err := s.stage(rel); err != nil {
		s.log.Debug("sup stage", "path", rel, "err", err)
		failed = true
	} else {
		st = st2
		defer st.abort()
	}
	for {
		s.armIdle()
		n, err := s.conn.ReadInt32()
		if err != nil {
			return err
		}
		switch {
		case n < 0:
			st.abort()
			return nil
		case n == rawEOF:
			if failed {
				return s.conn.WriteInt32(rawFailed)
			}
			if err := st.publish(true); err != nil {
				s.log.Warn("sup publish", "err", err)
				return s.conn.WriteInt32(rawFailed)
			}
			s.srv.metrics.Transfer("SUP", time.Since(start), st.size)
			return s.conn.WriteInt32(rawEOF)
		case n > tfproto.MaxFrame:
			return fmt.Errorf("SUP: %w: chunk of %d bytes", errProtocol, n)
		}
		data, err := s.conn.ReadBody(int(n))
		if err != nil {
			return err
		}
		if failed {
			continue
		}
		if err := st.write(data); err != nil {
			s.log.Warn("sup write", "err", err)
			st.abort()
			failed = true
		}
	}
}

// SDOWN path: the server streams the file as raw chunks of at most 524288
// bytes, then hdr32(0); hdr32(-1) instead on any failure, also after some
// chunks were sent (WIRE.md §5.37). Only regular files are sent.
func cmdSdown(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.conn.WriteInt32(rawFailed)
	}
	f, err := s.openRegular(rel)
	if err != nil {
		return s.conn.WriteInt32(rawFailed)
	}
	defer f.Close()
	start := time.Now()
	var sent int64
	bp := tfproto.GetBuffer()
	defer tfproto.PutBuffer(bp)
	buf := (*bp)[:tfproto.MaxFrame]
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if werr := s.conn.WriteFields(tfproto.Int32Field(int32(n)), buf[:n]); werr != nil {
				return werr
			}
			sent += int64(n)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			s.srv.metrics.Transfer("SDOWN", time.Since(start), sent)
			return s.conn.WriteInt32(rawEOF)
		default:
			s.log.Warn("sdown read", "path", rel, "err", err)
			return s.conn.WriteInt32(rawFailed)
		}
	}
}

// fileSize is FSIZE's value for one client path: the size of a regular file
// (symlinks followed inside the jail), -2 for anything else, -1 when the path
// is refused or cannot be stat'ed.
func (s *session) fileSize(p string) int64 {
	rel, ok := s.resolve(p)
	if !ok {
		return rawFailed
	}
	fi, err := s.fs.Root().Stat(rel)
	switch {
	case err != nil:
		return rawFailed
	case !fi.Mode().IsRegular():
		return rawNotRegular
	}
	return fi.Size()
}

// FSIZE path: a raw int64 (WIRE.md §5.39).
func cmdFSize(s *session, args string) error {
	return s.conn.WriteInt64(s.fileSize(args))
}

// maxListLine is the longest FSIZELS line the reference reads (fgets into
// 2048 bytes, newline excluded).
const maxListLine = 2047

// FSIZELS listpath: one raw int64 per line of the list file, then -3 (WIRE.md
// §5.40). Only "\n" is stripped. A line longer than 2047 bytes counts as one
// line and answers -1 (the reference would split it). A list that cannot be
// opened answers only -3.
func cmdFSizeLs(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.conn.WriteInt64(rawListEnd)
	}
	f, err := s.openRegular(rel)
	if err != nil {
		return s.conn.WriteInt64(rawListEnd)
	}
	defer f.Close()
	const batch = 1024
	fields := make([][]byte, 0, batch)
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		err := s.conn.WriteFields(fields...)
		fields = fields[:0]
		return err
	}
	err = scanLines(bufio.NewReaderSize(f, 4096), maxListLine, func(line []byte, tooLong bool) error {
		v := int64(rawFailed)
		if !tooLong {
			v = s.fileSize(string(line))
		}
		fields = append(fields, tfproto.Int64Field(v))
		if len(fields) == batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		var re *readError
		if !errors.As(err, &re) {
			return err // connection
		}
		s.log.Warn("fsizels read", "path", rel, "err", err)
	}
	fields = append(fields, tfproto.Int64Field(rawListEnd))
	return flush()
}

// readError is a failure reading the list file (not the connection).
type readError struct{ err error }

func (e *readError) Error() string { return "read list: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// scanLines calls fn for every "\n"-terminated line of r (and a final
// unterminated one), without the "\n". A line longer than max bytes is passed
// as tooLong with its first max bytes.
func scanLines(r *bufio.Reader, max int, fn func(line []byte, tooLong bool) error) error {
	var long []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			full := chunk[len(chunk)-1] == '\n'
			if full {
				chunk = chunk[:len(chunk)-1]
			}
			if len(long)+len(chunk) > max {
				tooLong = true
			}
			if !tooLong {
				long = append(long, chunk...)
			}
			if full {
				if ferr := fn(long, tooLong); ferr != nil {
					return ferr
				}
				long, tooLong = long[:0], false
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if len(long) > 0 || tooLong {
				return fn(long, tooLong)
			}
			return nil
		default:
			return &readError{err}
		}
	}
}

// SHA256 path: "OK 0x<64 lowercase hex>" (WIRE.md §5.32). Locks are ignored.
func cmdSHA256(s *session, args string) error {
	if args == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	f, err := s.openRegular(rel)
	if err != nil {
		if vfs.IsEscape(err) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(tfproto.CodeSHA256)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		s.log.Warn("sha256 read", "path", rel, "err", err)
		return s.fail(tfproto.CodeSHA256)
	}
	return s.okText("0x" + hex.EncodeToString(h.Sum(nil)))
}
