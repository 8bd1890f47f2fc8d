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

// MapError turns an os.Root error for a path that escapes into ErrAccess and
// returns other errors unchanged.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%w: %w", ErrAccess, err)
	}
	return err
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
