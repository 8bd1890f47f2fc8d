package notify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/internal/vfs"
)

// Limits of a watch list.
const (
	// MaxToken is the longest token (the reference reads at most 7 bytes).
	MaxToken = 7
	// MaxEntries bounds one session's watch list.
	MaxEntries = 1024
	// MaxAcked bounds how many acknowledged files one entry remembers; beyond
	// it, further acknowledged files may be notified again (as the reference
	// always does).
	MaxAcked = 65536
	// readBatch is how many names a sweep reads from a directory at a time.
	readBatch = 256
)

// ErrBadToken is a token ADDNTFY refuses (FAILED 5).
var ErrBadToken = errors.New("notify: invalid token")

// CheckToken accepts the empty token (every file) and tokens of at most
// MaxToken bytes, except ".", ".." and anything containing "/" or NUL, which
// can never start a file name.
func CheckToken(tok string) error {
	if len(tok) > MaxToken || tok == "." || tok == ".." || strings.ContainsAny(tok, "/\x00") {
		return fmt.Errorf("%w %q", ErrBadToken, tok)
	}
	return nil
}

// Entry is one ADDNTFY registration: files in Dir whose names start with Token.
//
// A file the client answered OK (keep) is remembered and not notified again
// while the same file is there unchanged (same inode and change time: a file
// replaced or modified since is notified again), so the next sweep moves on to the
// next file; the spec leaves open whether the same or another file comes next.
type Entry struct {
	// Token is the name prefix ("" matches every file).
	Token string
	// Dir is the directory, relative to the session root.
	Dir string
	// Hidden, when set, reports names of Dir the session may not see (a
	// jail's key file, vfs.FS.Hidden): they are never notified.
	Hidden func(name string) bool

	acked map[string]FileID // files answered OK
}

// Match reports whether a directory entry name is a notification for e:
// staging files of uploads in progress never are.
func (e *Entry) Match(name string) bool {
	return strings.HasPrefix(name, e.Token) && !vfs.IsStagingName(name) && (e.Hidden == nil || !e.Hidden(name))
}

// Find returns the next notification in e's directory: a name that matches,
// is neither a directory nor a symbolic link, and has not been acknowledged
// unchanged. found is false when there is none or the directory cannot be
// read (it may have disappeared: that is not an error of the session).
func (e *Entry) Find(root *os.Root) (name string, id FileID, found bool) {
	d, err := root.Open(e.Dir)
	if err != nil {
		return "", FileID{}, false
	}
	defer d.Close()
	var seen map[string]bool // acknowledged names still present
	for {
		names, err := d.Readdirnames(readBatch)
		for _, n := range names {
			if !e.Match(n) {
				continue
			}
			fi, serr := root.Lstat(path.Join(e.Dir, n))
			if serr != nil || fi.Mode()&(os.ModeDir|os.ModeSymlink) != 0 {
				continue
			}
			id := identity(fi)
			if old, ok := e.acked[n]; ok {
				if seen == nil {
					seen = make(map[string]bool)
				}
				seen[n] = true
				if old == id {
					continue
				}
			}
			return n, id, true
		}
		if err != nil {
			if err == io.EOF {
				// A full pass: forget acknowledgements of files gone.
				for n := range e.acked {
					if !seen[n] {
						delete(e.acked, n)
					}
				}
			}
			return "", FileID{}, false
		}
	}
}

// FileID tells one version of a file from another: its inode (numbers are
// reused at once after a delete) and its change time.
type FileID struct {
	ino   uint64
	ctime int64
}

func identity(fi os.FileInfo) FileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return FileID{ino: st.Ino, ctime: st.Ctim.Nano()}
	}
	return FileID{}
}

// Ack remembers that the client kept name (as it was when found: ino).
func (e *Entry) Ack(name string, ino FileID) {
	if e.acked == nil {
		e.acked = make(map[string]FileID)
	}
	if _, ok := e.acked[name]; ok || len(e.acked) < MaxAcked {
		e.acked[name] = ino
	}
}

// Forget drops what is remembered about name.
func (e *Entry) Forget(name string) { delete(e.acked, name) }

// Acked returns how many acknowledged files e remembers.
func (e *Entry) Acked() int { return len(e.acked) }

// Unlink deletes the notified file name from e's directory (DEL). It removes
// only non-directories: unlinkat without AT_REMOVEDIR, relative to the
// directory opened through root.
func (e *Entry) Unlink(root *os.Root, name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("notify: bad name %q", name)
	}
	d, err := root.Open(e.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	if err := rc.Control(func(fd uintptr) { uerr = unix.Unlinkat(int(fd), name, 0) }); err != nil {
		return err
	}
	if uerr != nil {
		return &os.PathError{Op: "unlinkat", Path: path.Join(e.Dir, name), Err: uerr}
	}
	e.Forget(name)
	return nil
}
