package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/tfd-project/tfd/tfproto"
)

// maxStreamChunk is the largest payload of one "CONT " message of the RCVFILE
// flow: the body stays within 524288 bytes (WIRE.md §1.3).
const maxStreamChunk = tfproto.MaxFrame - len(tfproto.Cont) - 1

// sendStream delivers r with the RCVFILE flow (WIRE.md §5.12): "CONT data"
// messages of at most maxStreamChunk bytes, each answered by the client; a
// client message of exactly "BREAK" stops the transfer (OK); at the end of r
// beforeOK runs (if set) and the final OK goes out. An empty r gives just OK. A
// read error of r ends the flow with FAILED 7. complete reports whether all of
// r was sent. A returned error is the connection's.
func (s *session) sendStream(r io.Reader, beforeOK func()) (complete bool, err error) {
	bp := tfproto.GetBuffer()
	defer tfproto.PutBuffer(bp)
	buf := (*bp)[:len(tfproto.Cont)+1+maxStreamChunk]
	head := copy(buf, tfproto.Cont+" ")
	for {
		n, rerr := io.ReadFull(r, buf[head:])
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			s.log.Warn("stream read", "err", rerr)
			return false, s.fail(tfproto.CodeTransferAPI)
		}
		if n == 0 {
			if beforeOK != nil {
				beforeOK()
			}
			return true, s.ok()
		}
		if err := s.conn.WriteFrame(buf[:head+n]); err != nil {
			return false, err
		}
		s.armIdle() // a client that stalls mid-flow is dropped
		reply, err := s.conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			return false, err
		}
		if string(reply) == tfproto.Break {
			return false, s.ok()
		}
	}
}

// RCVFILE (§5.12): "RCVFILE flag path"; flag "1" deletes the file after a
// complete transfer (before the final OK, so the client never sees it after
// OK); BREAK keeps it. 16 without a space after the flag, 1, 30 lock(parent),
// 9 missing, 8 a directory, 7 not a regular file (a FIFO or device is never
// read) or the open failed.
func cmdRcvFile(s *session, args string) error {
	flag, p, ok := strings.Cut(args, " ")
	if !ok {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(p)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	f, err := s.fs.Root().OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return s.failErr(err, notExist(err, tfproto.CodeFileNotExist, tfproto.CodeTransferAPI))
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return s.fail(tfproto.CodeTransferAPI)
	case fi.IsDir():
		return s.fail(tfproto.CodeIsDirectory)
	case !fi.Mode().IsRegular():
		return s.fail(tfproto.CodeTransferAPI)
	}
	var after func()
	if flag == "1" {
		after = func() {
			if err := s.fs.Root().Remove(rel); err != nil {
				s.log.Warn("RCVFILE delete after send", "err", err)
			}
		}
	}
	_, err = s.sendStream(f, after)
	return err
}

// LS and LSR (§5.14, §P row 7): records "F: rel", "D: rel/", "U: rel", each
// "\n"-terminated, relative to the listed directory, sorted by name; LSR is
// pre-order depth-first. Classification is lstat's: symlinks are U and never
// descended. Secure directories (*.sd, with their subtrees) and staging files
// are not listed; a secure directory named exactly can itself be listed. 1,
// 30 lock(self), 10 when the path is not a directory. The listing is generated
// while it is sent: nothing is written to disk.
func cmdLs(s *session, args string) error  { return s.list(args, false) }
func cmdLsr(s *session, args string) error { return s.list(args, true) }

func (s *session) list(args string, recursive bool) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(rel) {
		return s.fail(tfproto.CodeLocked)
	}
	ents, err := s.readDirSorted(rel)
	if err != nil {
		return s.failErr(err, tfproto.CodeDirNotExist)
	}
	l := &lister{s: s, recursive: recursive, stack: []listFrame{{dir: rel, ents: ents}}}
	_, err = s.sendStream(l, nil)
	return err
}

// openDir opens rel only if it is a directory: never a blocking open of a
// FIFO or device.
func (s *session) openDir(rel string) (*os.File, error) {
	return s.fs.Root().OpenFile(rel, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
}

// readDirSorted reads the directory rel (through a final symlink inside the
// jail) and sorts its entries by name.
func (s *session) readDirSorted(rel string) ([]fs.DirEntry, error) {
	d, err := s.openDir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, errors.New("not a directory")
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// lister is an io.Reader that yields listing records as they are read, walking
// one directory level per stack frame. It runs on the session goroutine (it
// opens directories by name).
type lister struct {
	s         *session
	recursive bool
	stack     []listFrame
	pending   []byte
}

type listFrame struct {
	rel  string // relative to the listed directory ("" for itself)
	dir  string // relative to the session root
	ents []fs.DirEntry
	i    int
}

func (l *lister) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		if !l.next() {
			return 0, io.EOF
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// next appends the next record to pending; it reports false at the end.
func (l *lister) next() bool {
	for len(l.stack) > 0 {
		top := &l.stack[len(l.stack)-1]
		if top.i >= len(top.ents) {
			l.stack = l.stack[:len(l.stack)-1]
			continue
		}
		e := top.ents[top.i]
		top.i++
		name := e.Name()
		if hiddenName(name) || l.s.fs.Hidden(path.Join(top.dir, name)) {
			continue
		}
		rel := path.Join(top.rel, name)
		switch t := e.Type(); {
		case t.IsDir():
			if isSecureDirName(name) {
				continue
			}
			l.pending = append(l.pending[:0], "D: "+rel+"/\n"...)
			if l.recursive {
				dir := path.Join(top.dir, name)
				// A directory that cannot be read is listed without contents.
				if ents, err := l.s.readDirSorted(dir); err == nil {
					l.stack = append(l.stack, listFrame{rel: rel, dir: dir, ents: ents})
				}
			}
		case t.IsRegular():
			l.pending = append(l.pending[:0], "F: "+rel+"\n"...)
		default:
			l.pending = append(l.pending[:0], "U: "+rel+"\n"...)
		}
		return true
	}
	return false
}
