package server

import (
	"errors"
	"io/fs"
	"path"

	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// resolve maps a client path to a name relative to the session root, or answers
// FAILED 1 (WIRE.md §4.3): NUL, over-long names, ".." above the root, and
// parent directories reached through a symlink that points out are refused;
// staging names are not the client's. Every handler resolves its paths through here and then
// uses s.fs.Root() with the result; nothing joins host paths by hand.
func (s *session) resolve(p string) (string, bool) {
	name, err := s.fs.Resolve(p)
	if err != nil {
		return "", false
	}
	if vfs.IsStagingName(path.Base(name)) || s.fs.Hidden(name) {
		return "", false
	}
	return name, true
}

// parentOf returns the directory that contains name ("." for top-level names and
// for the root itself).
func parentOf(name string) string { return path.Dir(name) }

// isLocked reports whether dir (root-relative) holds this session's lock file
// (WIRE.md §5.21): the check is per directory and not inherited.
func (s *session) isLocked(dir string) bool {
	if s.lockName == "" {
		return false
	}
	_, err := s.fs.Root().Lstat(path.Join(dir, s.lockName))
	return err == nil
}

// isAccessError reports whether err means the path left the jail or the kernel
// refused access: both answer FAILED 1.
func isAccessError(err error) bool {
	return errors.Is(vfs.MapError(err), vfs.ErrAccess) || errors.Is(err, fs.ErrPermission)
}

// failErr answers FAILED 1 for access errors and fallback otherwise.
func (s *session) failErr(err error, fallback tfproto.Code) error {
	if isAccessError(err) {
		return s.fail(tfproto.CodeAccessDenied)
	}
	return s.fail(fallback)
}
