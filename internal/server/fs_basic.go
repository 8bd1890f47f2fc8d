package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// The file-system family: directory and file commands, LOCK, secure
// directories, the best-effort X-commands, listings and RCVFILE (WIRE.md §5.3–
// §5.7, §5.10–§5.12, §5.14–§5.21, §5.34, §5.43). Every path goes through
// s.resolve and then the session's os.Root; all of it runs on the session
// goroutine (the thread rule of multi-user mode).
func init() {
	registerFamily(family{name: "fs", commands: []command{
		{name: "MKDIR", run: cmdMkdir},
		{name: "DEL", run: cmdDel},
		{name: "RMDIR", run: cmdRmdir},
		{name: "COPY", run: cmdCopy},
		{name: "TOUCH", run: cmdTouch},
		{name: "FSTAT", run: cmdFstat},
		{name: "FUPD", run: cmdFupd},
		{name: "CPDIR", run: cmdCpdir},
		{name: "RENAM", run: cmdRenam},
		{name: "LOCK", run: cmdLock},
		{name: "RMSECDIR", run: cmdRmSecDir},
		{name: "XCOPY", run: cmdXCopy},
		{name: "XCPDIR", run: cmdXCpdir},
		{name: "XDEL", run: cmdXDel},
		{name: "XRMDIR", run: cmdXRmdir},
		{name: "LS", run: cmdLs},
		{name: "LSR", run: cmdLsr},
		{name: "RCVFILE", run: cmdRcvFile},
	}})
}

// pairSep separates the two arguments of COPY, CPDIR, RENAM, RMSECDIR and the
// X-commands (WIRE.md §4.1).
const pairSep = " | "

// splitPair splits args at the first " | ".
func splitPair(args string) (left, right string, ok bool) {
	return strings.Cut(args, pairSep)
}

// resolvePair splits "src | dst" and resolves both paths: 16 without the
// separator, 1 when either is refused.
func (s *session) resolvePair(args string) (src, dst string, code tfproto.Code) {
	srcArg, dstArg, ok := splitPair(args)
	if !ok {
		return "", "", tfproto.CodeMissingParam
	}
	src, ok1 := s.resolve(srcArg)
	dst, ok2 := s.resolve(dstArg)
	if !ok1 || !ok2 {
		return "", "", tfproto.CodeAccessDenied
	}
	return src, dst, 0
}

// isSecureDirName reports whether a directory's base name marks a secure
// directory (WIRE.md §5.43).
func isSecureDirName(name string) bool { return strings.HasSuffix(name, ".sd") }

// hiddenName reports whether a directory entry is never shown to clients nor
// touched by tree walks: staging files of unfinished transfers and the secure
// FS metadata.
func hiddenName(name string) bool {
	return vfs.IsStagingName(name) || name == ".securefs_metadata"
}

// lockedFor applies lock(self) to directories and lock(parent) to everything
// else (FSTAT, FUPD, RENAM; WIRE.md §5.10, §5.15).
func (s *session) lockedFor(rel string, fi fs.FileInfo) bool {
	if fi != nil && fi.IsDir() {
		return s.isLocked(rel)
	}
	return s.isLocked(parentOf(rel))
}

// MKDIR (§5.3): mode 0755, lock(parent); an existing path (the root too) is 4;
// every other failure, a missing parent included, is 1.
func cmdMkdir(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	if rel == "." {
		return s.fail(tfproto.CodeDirExists)
	}
	if err := s.fs.Root().Mkdir(rel, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return s.fail(tfproto.CodeDirExists)
		}
		return s.fail(tfproto.CodeAccessDenied)
	}
	return s.ok()
}

// DEL (§5.4): lock(parent) unless the name is this session's lock file; 9 for
// a missing path, 8 for a directory (the root too). A symlink is removed itself,
// a dangling one too (tfd's decision: the reference stats through it, which
// would make a dangling link undeletable); one pointing out of the jail is
// refused by resolve (1), like every path that leads out. Unlink failures other than
// permission (1) and absence (9) answer 1 too: tfd never sends the reference's
// bare "FAILED " (WIRE.md §P row 5).
func cmdDel(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if !(s.lockName != "" && path.Base(rel) == s.lockName) && s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	fi, err := s.fs.Root().Lstat(rel)
	switch {
	case missing(err):
		return s.fail(tfproto.CodeFileNotExist)
	case err != nil:
		return s.failErr(err, tfproto.CodeAccessDenied)
	case fi.IsDir():
		return s.fail(tfproto.CodeIsDirectory)
	}
	if err := s.fs.Root().Remove(rel); err != nil {
		return s.failErr(err, notExist(err, tfproto.CodeFileNotExist, tfproto.CodeAccessDenied))
	}
	return s.ok()
}

// missing reports whether err says the path is not there: it does not exist,
// or a file stands where one of its directories is expected (ENOTDIR).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notExist returns ifMissing for a missing path (see missing) and otherwise
// other.
func notExist(err error, ifMissing, other tfproto.Code) tfproto.Code {
	if missing(err) {
		return ifMissing
	}
	return other
}

// RMDIR (§5.5, §P row 17): recursive delete, lock(parent). A missing path, or
// one that is not a directory (a file, a symlink), is 10. Secure directories
// and their subtrees survive, and so do their ancestors: then the answer is 15;
// RMDIR of a secure directory is 15, inside one (reached by its exact name)
// it works as anywhere else. The root itself: as the spec
// says, everything in it except secure directories is deleted and the answer
// is 15 (the root cannot go).
func cmdRmdir(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	if rel == "." {
		s.removeContents(rel, true)
		return s.fail(tfproto.CodeDirStillExists)
	}
	fi, err := s.fs.Root().Lstat(rel)
	if err != nil || !fi.IsDir() {
		if err != nil && !missing(err) && isAccessError(err) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(tfproto.CodeDirNotExist)
	}
	if !s.removeTree(rel, true) {
		return s.fail(tfproto.CodeDirStillExists)
	}
	return s.ok()
}

// removeTree deletes the directory rel and everything below it, never
// following symlinks. With keepSecure, directories named *.sd (rel itself
// included) and their subtrees are kept; rel may lie inside one. It reports whether rel is gone.
func (s *session) removeTree(rel string, keepSecure bool) bool {
	if keepSecure && isSecureDirName(path.Base(rel)) {
		return false
	}
	if !s.removeContents(rel, keepSecure) {
		return false
	}
	err := s.fs.Root().Remove(rel)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// removeContents deletes everything inside the directory rel (see
// removeTree) and reports whether it is empty now.
func (s *session) removeContents(rel string, keepSecure bool) bool {
	d, err := s.openDir(rel)
	if err != nil {
		return false
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return false
	}
	gone := true
	for _, e := range ents {
		child := path.Join(rel, e.Name())
		if s.fs.Hidden(child) {
			gone = false // the jail's key stays (vfs.FS.Hidden)
			continue
		}
		if e.IsDir() {
			gone = s.removeTree(child, keepSecure) && gone
			continue
		}
		if err := s.fs.Root().Remove(child); err != nil && !errors.Is(err, fs.ErrNotExist) {
			gone = false
		}
	}
	return gone
}

// COPY (§5.6, §P row 19): a real copy of a regular file (the kernel's
// copy_file_range through io.Copy between two *os.File), permission bits kept.
// 16 without " | "; lock(parent) of both; 17 src missing, 19 src a directory,
// 18 src neither (FIFO, device: never opened for a blocking read) or a copy
// error, 12 dst exists. A failed copy leaves no dst behind.
func cmdCopy(s *session, args string) error {
	src, dst, code := s.resolvePair(args)
	if code != 0 {
		return s.fail(code)
	}
	if s.isLocked(parentOf(src)) || s.isLocked(parentOf(dst)) {
		return s.fail(tfproto.CodeLocked)
	}
	code, err := s.copyFile(src, dst)
	if err != nil {
		if isAccessError(err) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(code)
	}
	return s.ok()
}

// copyFile copies the regular file src to the new file dst and returns the
// COPY failure code with the error.
func (s *session) copyFile(src, dst string) (tfproto.Code, error) {
	in, err := s.fs.Root().OpenFile(src, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if missing(err) {
			return tfproto.CodeSrcFileNotExist, err
		}
		return tfproto.CodeCopy, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return tfproto.CodeCopy, err
	}
	if fi.IsDir() {
		return tfproto.CodeDirLink, errors.New("source is a directory")
	}
	if !fi.Mode().IsRegular() {
		return tfproto.CodeCopy, errors.New("source is not a regular file")
	}
	out, err := s.fs.Root().OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return tfproto.CodeFileExists, err
		}
		return tfproto.CodeCopy, err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(fi.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.fs.Root().Remove(dst)
		return tfproto.CodeCopy, err
	}
	return 0, nil
}

// TOUCH (§5.7, §P row 18): creates an empty file with mode 0644; lock(parent);
// 12 if the name exists (the root too), 24 when creation fails (a missing
// parent, a file where a directory is expected).
func cmdTouch(s *session, args string) error {
	rel, ok := s.resolve(args)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(parentOf(rel)) {
		return s.fail(tfproto.CodeLocked)
	}
	if rel == "." {
		return s.fail(tfproto.CodeFileExists)
	}
	f, err := s.fs.Root().OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return s.fail(tfproto.CodeFileExists)
		}
		return s.failErr(err, tfproto.CodeCreateFile)
	}
	f.Close()
	return s.ok()
}

// statFollow stats rel through a final symlink (inside the jail only) and
// answers 16/1/30/9 as FSTAT and FUPD do; fi is nil when it answered.
func (s *session) statFollow(args string) (string, fs.FileInfo, error) {
	if args == "" {
		return "", nil, s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(args)
	if !ok {
		return "", nil, s.fail(tfproto.CodeAccessDenied)
	}
	fi, err := s.fs.Root().Stat(rel)
	if err != nil && isAccessError(err) {
		return "", nil, s.fail(tfproto.CodeAccessDenied)
	}
	if s.lockedFor(rel, fi) {
		return "", nil, s.fail(tfproto.CodeLocked)
	}
	if err != nil {
		return "", nil, s.fail(tfproto.CodeFileNotExist)
	}
	return rel, fi, nil
}

// FSTAT (§5.10): "OK T size atime mtime", T = D, F or U; follows symlinks.
func cmdFstat(s *session, args string) error {
	_, fi, err := s.statFollow(args)
	if fi == nil {
		return err
	}
	t := "U"
	switch {
	case fi.IsDir():
		t = "D"
	case fi.Mode().IsRegular():
		t = "F"
	}
	atime := fi.ModTime().Unix()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		atime = st.Atim.Sec
	}
	return s.okText(t + " " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(atime, 10) + " " + strconv.FormatInt(fi.ModTime().Unix(), 10))
}

// FUPD (§5.11): sets atime and mtime to now; 27 when that fails (a
// permission failure too).
func cmdFupd(s *session, args string) error {
	rel, fi, err := s.statFollow(args)
	if fi == nil {
		return err
	}
	t := time.Now()
	if err := s.fs.Root().Chtimes(rel, t, t); err != nil {
		if vfs.IsEscape(err) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(tfproto.CodeTimestamp)
	}
	return s.ok()
}

// CPDIR (§5.16, §P row 19): copies the tree src to the new directory dst with
// real file copies and the source directories' modes. lock(self) of src,
// lock(parent) of dst; 20 when src is missing or not a directory, 4 when dst
// exists, 21 when the copy fails (the partial dst is removed). Symlinks,
// FIFOs, devices and staging files are not copied (tfd's decision: copying a
// symlink would copy a pointer, not data); secure directories are copied, as
// in the reference. A dst inside src is fine: the copy never descends into
// directories it made itself.
func cmdCpdir(s *session, args string) error {
	src, dst, code := s.resolvePair(args)
	if code != 0 {
		return s.fail(code)
	}
	if s.isLocked(src) || s.isLocked(parentOf(dst)) {
		return s.fail(tfproto.CodeLocked)
	}
	fi, err := s.fs.Root().Stat(src)
	if err != nil && isAccessError(err) {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if err != nil || !fi.IsDir() {
		return s.fail(tfproto.CodeSrcNotDir)
	}
	if _, err := s.fs.Root().Lstat(dst); err == nil || dst == "." {
		return s.fail(tfproto.CodeDirExists)
	}
	if code, err := s.copyTree(src, dst, map[fileKey]bool{}); err != nil {
		if isAccessError(err) && code == 0 {
			return s.fail(tfproto.CodeAccessDenied)
		}
		if code == 0 {
			code = tfproto.CodeReplicateTree
		}
		return s.fail(code)
	}
	return s.ok()
}

// fileKey identifies a directory by device and inode.
type fileKey struct{ dev, ino uint64 }

func keyOf(fi fs.FileInfo) (fileKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino}, true
}

// copyTree makes dst a copy of the directory src (see cmdCpdir). made holds
// the directories this command has made so far (also for earlier targets of an
// XCPDIR), which are never copied again: a command's copies never feed on each
// other, so one command costs at most one copy of src per target. On failure
// it removes what it made and returns 4 when dst appeared meanwhile, else 0.
func (s *session) copyTree(src, dst string, made map[fileKey]bool) (tfproto.Code, error) {
	if err := s.fs.Root().Mkdir(dst, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return tfproto.CodeDirExists, err
		}
		return 0, err
	}
	if err := s.copyTreeInto(src, dst, made); err != nil {
		s.fs.Root().RemoveAll(dst)
		return 0, err
	}
	return 0, nil
}

// copyTreeInto fills the existing directory dst from src, then gives dst the
// mode of src.
func (s *session) copyTreeInto(src, dst string, made map[fileKey]bool) error {
	root := s.fs.Root()
	if fi, err := root.Lstat(dst); err == nil {
		if k, ok := keyOf(fi); ok {
			made[k] = true
		}
	}
	d, err := s.openDir(src)
	if err != nil {
		return err
	}
	sfi, err := d.Stat()
	if err != nil {
		d.Close()
		return err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		from, to := path.Join(src, e.Name()), path.Join(dst, e.Name())
		if hiddenName(e.Name()) || s.fs.Hidden(from) {
			continue
		}
		switch {
		case e.IsDir():
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if k, ok := keyOf(fi); ok && made[k] {
				continue // a directory this copy made: never copy into itself
			}
			if err := root.Mkdir(to, 0o700); err != nil {
				return err
			}
			if err := s.copyTreeInto(from, to, made); err != nil {
				return err
			}
		case e.Type().IsRegular():
			if _, err := s.copyFile(from, to); err != nil {
				return err
			}
		}
	}
	return root.Chmod(dst, sfi.Mode().Perm())
}

// RENAM (§5.15): rename(2) inside the jail. 16 without " | " or with an empty
// new name; lock(self) for a directory, lock(parent) otherwise, on both sides;
// 31 for any failure, a permission failure too (the root cannot be renamed).
func cmdRenam(s *session, args string) error {
	oldArg, newArg, ok := splitPair(args)
	if !ok || newArg == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	from, ok1 := s.resolve(oldArg)
	to, ok2 := s.resolve(newArg)
	if !ok1 || !ok2 {
		return s.fail(tfproto.CodeAccessDenied)
	}
	ofi, _ := s.fs.Root().Lstat(from)
	nfi, _ := s.fs.Root().Lstat(to)
	if s.lockedFor(from, ofi) || s.lockedFor(to, nfi) {
		return s.fail(tfproto.CodeLocked)
	}
	if from == "." || to == "." || ofi == nil {
		return s.fail(tfproto.CodeRename)
	}
	if err := s.fs.Root().Rename(from, to); err != nil {
		if vfs.IsEscape(err) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(tfproto.CodeRename)
	}
	return s.ok()
}

// LOCK (§5.21, §P row 12): sets this session's lock-file name; empty turns
// locking off. A name with "/" or "." (so also "." and ".."), NUL, or longer
// than a file name may be is 28.
func cmdLock(s *session, args string) error {
	if strings.ContainsAny(args, "/.\x00") || len(args) > vfs.MaxName {
		return s.fail(tfproto.CodeLockToken)
	}
	s.lockName = args
	return s.ok()
}

// RMSECDIR (§5.34): if path/token exists, removes path recursively, secure
// directories included. lock(self); 16 without " | "; 47 when the token is not
// there (or is not a plain name); 15 when something survived. For the root,
// as the spec says, everything in it is deleted and the answer is 15.
func cmdRmSecDir(s *session, args string) error {
	token, dirArg, ok := splitPair(args)
	if !ok {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(dirArg)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(rel) {
		return s.fail(tfproto.CodeLocked)
	}
	if token == "" || token == "." || token == ".." || strings.ContainsAny(token, "/\x00") {
		return s.fail(tfproto.CodeRmSecDir)
	}
	fi, err := s.fs.Root().Lstat(rel)
	if err != nil || !fi.IsDir() {
		return s.fail(tfproto.CodeRmSecDir)
	}
	if _, err := s.fs.Root().Lstat(path.Join(rel, token)); err != nil || s.fs.Hidden(path.Join(rel, token)) {
		return s.fail(tfproto.CodeRmSecDir)
	}
	if rel == "." {
		s.removeContents(rel, false)
		return s.fail(tfproto.CodeDirStillExists)
	}
	if !s.removeTree(rel, false) {
		return s.fail(tfproto.CodeDirStillExists)
	}
	return s.ok()
}
