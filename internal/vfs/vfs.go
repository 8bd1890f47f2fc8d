// Package vfs is the session's jailed view of the filesystem. Every path a client
// names is resolved through Go's os.Root for the session's root directory (the
// dbdir, or the INJAIL directory), so "..", absolute paths and symlinks cannot
// lead outside it; there are no string-prefix checks.
package vfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrAccess is returned for a client path that may not be used at all: it
// contains NUL, is longer than the system allows, or leaves the root. The
// protocol answer is FAILED 1.
var ErrAccess = errors.New("vfs: access denied to location")

// Limits on client paths (Linux PATH_MAX and NAME_MAX).
const (
	MaxPath = 4095
	MaxName = 255
)

// FS is a jailed directory tree.
type FS struct {
	root *os.Root
	dir  string
	// hidden is a root-relative name the client may not use (jail.go).
	hidden string
}

// Open jails dir.
func Open(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	return &FS{root: r, dir: r.Name()}, nil
}

// Close releases the root's descriptor.
func (f *FS) Close() error { return f.root.Close() }

// Root returns the underlying os.Root.
func (f *FS) Root() *os.Root { return f.root }

// Dir returns the host path of the root (for logs and statfs, never for
// resolving client paths).
func (f *FS) Dir() string { return f.dir }

// Clean maps a client path to a name relative to the root: a leading "/" is
// optional, "" and "/" mean the root itself ("."). It rejects NUL bytes, over-long
// paths or components, and any path whose lexical form climbs above the root.
// Symlinks are the os.Root's business.
func Clean(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 || len(p) > MaxPath {
		return "", ErrAccess
	}
	for _, part := range strings.Split(p, "/") {
		if len(part) > MaxName {
			return "", ErrAccess
		}
	}
	c := path.Clean("/" + p)
	// path.Clean of a rooted path never climbs above "/", so a client path that
	// tries must be caught before cleaning.
	if escapes(p) {
		return "", ErrAccess
	}
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

// escapes reports whether p, read relative to the root, climbs above it at any
// point.
func escapes(p string) bool {
	depth := 0
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// errEscapes is the os package's (unexported) "path escapes from parent"
// error, learnt once by provoking it, so that MapError can match it with
// errors.Is instead of comparing message strings. os.Root refuses an absolute
// name lexically, before any system call, so probing costs one open of "/".
var errEscapes = sync.OnceValue(func() error {
	r, err := os.OpenRoot("/")
	if err != nil {
		return nil
	}
	defer r.Close()
	_, err = r.Lstat("/")
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err
	}
	return nil
})

// IsEscape reports whether err is os.Root's refusal of a name that leaves the
// root (through "..", an absolute name or a symlink pointing out).
func IsEscape(err error) bool {
	if err == nil {
		return false
	}
	if e := errEscapes(); e != nil {
		return errors.Is(err, e)
	}
	// The probe could not run (no "/"?): fall back to the message.
	return strings.Contains(err.Error(), "path escapes from parent")
}

// MapError turns an os.Root error for a path that escapes into one matching
// ErrAccess and returns other errors unchanged.
func MapError(err error) error {
	if IsEscape(err) {
		return fmt.Errorf("%w: %w", ErrAccess, err)
	}
	return err
}

// Resolve maps a client path to a root-relative name (see Clean) and checks
// that it stays inside the root when followed to its end: a path that passes
// through, or ends in, a symlink pointing out answers ErrAccess. A name that
// does not exist yet is fine. Every later operation still goes through the
// os.Root, so a symlink swapped in afterwards cannot lead out either (the
// operation fails; see MapError).
func (f *FS) Resolve(p string) (string, error) {
	name, err := Clean(p)
	if err != nil {
		return "", err
	}
	if _, err := f.root.Stat(name); IsEscape(err) {
		return "", fmt.Errorf("%w: %w", ErrAccess, err)
	}
	return name, nil
}

// FreeSpace returns the bytes available to unprivileged users on the root's
// filesystem (f_bavail × f_bsize).
func (f *FS) FreeSpace() (uint64, error) {
	d, err := f.root.Open(".")
	if err != nil {
		return 0, fmt.Errorf("freesp: %w", err)
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// StagingPrefix starts the name of a file a transfer is still writing (when an
// unnamed O_TMPFILE cannot be used). Listings and X-commands never show such
// names, and clients cannot create them.
const StagingPrefix = ".tfd-staging-"

// IsStagingName reports whether a base name is a staging file's.
func IsStagingName(name string) bool { return strings.HasPrefix(name, StagingPrefix) }
