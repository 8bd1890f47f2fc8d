package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/internal/vfs"
)

// Staging: SNDFILE and SUP never write into the target file. The data goes into
// a staging file in the target's directory and is published atomically when the
// transfer completes, so no half-written file ever looks complete, and an
// aborted transfer (BREAK, cancel, write error, disconnect, server shutdown)
// leaves any existing file untouched.
//
// The staging file is an unnamed O_TMPFILE opened in the target's directory (the
// directory itself is opened through the session's os.Root, so it is jailed);
// it is published with linkat through /proc/self/fd (or AT_EMPTY_PATH). Where
// the filesystem has no O_TMPFILE, or the file cannot be linked by descriptor,
// the data is staged under a hidden vfs.StagingPrefix name that listings skip
// and clients cannot name, and published by rename.
//
// Every path operation here runs on the session goroutine (thread rule).

// errTargetExists and errTargetIsDir are publish-time failures.
var (
	errTargetExists = errors.New("staging: target exists")
	errTargetIsDir  = errors.New("staging: target is a directory")
)

// writeStagedHook, when set (tests), replaces the write to a staging file, to
// simulate a full disk.
var writeStagedHook atomic.Pointer[func(f *os.File, b []byte) (int, error)]

// staged is file data written for a target that is not published yet.
type staged struct {
	dir  *os.File // the target's directory, opened through the session root
	base string   // the target's name in dir
	f    *os.File // the data
	// tmp is the staging name in dir, or "" for an unnamed O_TMPFILE.
	tmp  string
	size int64
	done bool
}

// stage opens a staging file for the root-relative target rel. The target's
// directory must exist.
func (s *session) stage(rel string) (*staged, error) {
	base := path.Base(rel)
	if rel == "." || base == "." || base == ".." {
		return nil, errTargetIsDir
	}
	dir, err := s.fs.Root().OpenFile(parentOf(rel), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	st := &staged{dir: dir, base: base}
	dfd := int(dir.Fd())
	if linkByFD() && !namedStagingOnly.Load() {
		fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			st.f = os.NewFile(uintptr(fd), "staging")
			return st, nil
		}
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) {
			dir.Close()
			return nil, &fs.PathError{Op: "openat", Path: rel, Err: err}
		}
		// EOPNOTSUPP, EISDIR (kernels without O_TMPFILE) …: use a name.
	}
	for range 8 {
		name := stagingName()
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			dir.Close()
			return nil, &fs.PathError{Op: "openat", Path: rel, Err: err}
		}
		st.f = os.NewFile(uintptr(fd), name)
		st.tmp = name
		return st, nil
	}
	dir.Close()
	return nil, fmt.Errorf("staging %s: no free staging name", rel)
}

func stagingName() string {
	var b [12]byte
	rand.Read(b[:])
	return vfs.StagingPrefix + hex.EncodeToString(b[:])
}

// namedStagingOnly makes stage skip O_TMPFILE (tests of the fallback).
var namedStagingOnly atomic.Bool

// linkByFD reports whether an unnamed file can be given a name through
// /proc/self/fd (checked once).
var linkByFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// write appends b to the staged data.
func (st *staged) write(b []byte) error {
	var n int
	var err error
	if h := writeStagedHook.Load(); h != nil {
		n, err = (*h)(st.f, b)
	} else {
		n, err = st.f.Write(b)
	}
	st.size += int64(n)
	if err != nil {
		return fmt.Errorf("staging write: %w", err)
	}
	return nil
}

// abort discards the staged data. It is safe to call more than once and after
// publish.
func (st *staged) abort() {
	if st == nil || st.done {
		return
	}
	st.done = true
	st.f.Close()
	if st.tmp != "" {
		unix.Unlinkat(int(st.dir.Fd()), st.tmp, 0)
	}
	st.dir.Close()
}

// publish gives the staged data the target's name. With overwrite false an
// existing target (of any kind) is never replaced: errTargetExists. A directory
// is never replaced: errTargetIsDir. On failure the staged data is discarded.
// An overwritten file keeps its permission bits; it becomes a new inode (hard
// links to the old file keep the old data).
func (st *staged) publish(overwrite bool) (err error) {
	defer st.abort()
	dfd := int(st.dir.Fd())
	var old unix.Stat_t
	if e := unix.Fstatat(dfd, st.base, &old, unix.AT_SYMLINK_NOFOLLOW); e == nil {
		switch {
		case !overwrite:
			return errTargetExists
		case old.Mode&unix.S_IFMT == unix.S_IFDIR:
			return errTargetIsDir
		case old.Mode&unix.S_IFMT == unix.S_IFREG:
			unix.Fchmod(int(st.f.Fd()), old.Mode&0o7777)
		}
	}
	if err := st.f.Sync(); err != nil {
		return fmt.Errorf("staging sync: %w", err)
	}
	if st.tmp == "" {
		// Give the unnamed file a hidden name first when it must replace
		// something; otherwise link it straight to the target, which fails
		// with EEXIST if the target appeared meanwhile.
		name := st.base
		if overwrite {
			name = stagingName()
		}
		if err := st.linkUnnamed(name); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return errTargetExists
			}
			return err
		}
		if !overwrite {
			return nil
		}
		st.tmp = name
	}
	if overwrite {
		err = unix.Renameat(dfd, st.tmp, dfd, st.base)
		if err == nil {
			st.tmp = "" // renamed away: nothing left to unlink
		}
	} else {
		err = unix.Renameat2(dfd, st.tmp, dfd, st.base, unix.RENAME_NOREPLACE)
		if err == nil {
			st.tmp = ""
		} else if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// No RENAME_NOREPLACE on this filesystem: link, then drop the
			// staging name (abort does).
			err = unix.Linkat(dfd, st.tmp, dfd, st.base, 0)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return errTargetExists
	case errors.Is(err, unix.EISDIR):
		return errTargetIsDir
	}
	return fmt.Errorf("staging publish: %w", err)
}

// linkUnnamed names the O_TMPFILE in the target's directory.
func (st *staged) linkUnnamed(name string) error {
	dfd := int(st.dir.Fd())
	fd := int(st.f.Fd())
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dfd, name, unix.AT_SYMLINK_FOLLOW)
	if err == nil || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return err
	}
	if e := unix.Linkat(fd, "", dfd, name, unix.AT_EMPTY_PATH); e == nil {
		return nil
	}
	return fmt.Errorf("staging link: %w", err)
}
