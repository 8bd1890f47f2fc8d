package server

import (
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/tfd-project/tfd/tfproto"
)

// The best-effort X-commands (WIRE.md §5.17–§5.20). Decisions of tfd:
//   - A pattern matches an entry when the entry's path, written from the session
//     root with a leading "/" ("/sub/deep"), ends with it (plain suffix: "deep"
//     matches "/sub/deep" and "/xdeep"; "/sub/deep" matches only that one).
//   - The walks never enter secure directories (*.sd) nor report them, never
//     follow symlinks, and skip staging files. A secure directory given exactly
//     as XDEL's or XRMDIR's dir is walked (reachable by exact name), its nested
//     secure directories are not.
//   - All matches are collected before anything is changed, so new copies are
//     never matched or walked again, and XCPDIR never copies a directory it
//     made itself (each target gets one copy of src as it was).
//   - XCOPY/XCPDIR newname must be a plain name: empty, ".", "..", a name with
//     "/" or NUL, or a staging name answers FAILED 1 (access denied).

// plainName reports whether n may name a new entry inside a directory.
func plainName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00") && !hiddenName(n)
}

// walkEntry is one entry found by walkTree.
type walkEntry struct {
	rel string // relative to the session root
	dir bool   // a real directory (not a symlink)
}

// walkTree lists everything below the directory rel in pre-order, sorted per
// directory, without secure directories, symlink targets or staging files.
func (s *session) walkTree(rel string, out []walkEntry) []walkEntry {
	ents, err := s.readDirSorted(rel)
	if err != nil {
		return out
	}
	for _, e := range ents {
		name := e.Name()
		if hiddenName(name) || s.fs.Hidden(path.Join(rel, name)) {
			continue
		}
		child := path.Join(rel, name)
		if e.IsDir() {
			if isSecureDirName(name) {
				continue
			}
			out = append(out, walkEntry{rel: child, dir: true})
			out = s.walkTree(child, out)
			continue
		}
		out = append(out, walkEntry{rel: child})
	}
	return out
}

// matches applies the suffix rule to a root-relative name.
func matches(rel, pattern string) bool {
	if rel == "." {
		return pattern == "/"
	}
	return strings.HasSuffix("/"+rel, pattern)
}

// xArgs parses "newname SP src SP|SP pattern": 16 when a part is missing, 1 for
// a bad newname or src.
func (s *session) xArgs(args string) (newname, src, pattern string, code tfproto.Code) {
	newname, rest, ok := strings.Cut(args, " ")
	srcArg, pattern, ok2 := splitPair(rest)
	if !ok || !ok2 || newname == "" || pattern == "" {
		return "", "", "", tfproto.CodeMissingParam
	}
	if !plainName(newname) {
		return "", "", "", tfproto.CodeAccessDenied
	}
	src, ok = s.resolve(srcArg)
	if !ok {
		return "", "", "", tfproto.CodeAccessDenied
	}
	return newname, src, pattern, 0
}

// matchingDirs returns the directories of the session root (itself included)
// that match pattern.
func (s *session) matchingDirs(pattern string) []string {
	var dirs []string
	if matches(".", pattern) {
		dirs = append(dirs, ".")
	}
	for _, e := range s.walkTree(".", nil) {
		if e.dir && matches(e.rel, pattern) {
			dirs = append(dirs, e.rel)
		}
	}
	return dirs
}

// XCOPY (§5.17): copies the regular file src as newname into every directory
// of the session root that matches pattern; a locked target directory, an
// existing newname or a failed copy is skipped silently. 16, 1, 30
// lock(parent of src), 17 src missing, 23 src not a regular file.
func cmdXCopy(s *session, args string) error {
	newname, src, pattern, code := s.xArgs(args)
	if code != 0 {
		return s.fail(code)
	}
	if s.isLocked(parentOf(src)) {
		return s.fail(tfproto.CodeLocked)
	}
	if code := s.xSource(src, tfproto.CodeSrcFileNotExist, tfproto.CodeSrcNotFile, fs.FileMode.IsRegular); code != 0 {
		return s.fail(code)
	}
	for _, d := range s.matchingDirs(pattern) {
		if s.isLocked(d) || s.fs.Hidden(path.Join(d, newname)) {
			continue
		}
		s.copyFile(src, path.Join(d, newname))
	}
	return s.ok()
}

// XCPDIR (§5.18): copies the directory src as newname (CPDIR semantics) into
// every matching directory, skipping silently as XCOPY does. 16, 1, 30
// lock(self) of src, 29 src missing, 20 src not a directory.
func cmdXCpdir(s *session, args string) error {
	newname, src, pattern, code := s.xArgs(args)
	if code != 0 {
		return s.fail(code)
	}
	if s.isLocked(src) {
		return s.fail(tfproto.CodeLocked)
	}
	if code := s.xSource(src, tfproto.CodeSrcPathNotExist, tfproto.CodeSrcNotDir, fs.FileMode.IsDir); code != 0 {
		return s.fail(code)
	}
	made := map[fileKey]bool{}
	for _, d := range s.matchingDirs(pattern) {
		if s.isLocked(d) || s.fs.Hidden(path.Join(d, newname)) {
			continue
		}
		to := path.Join(d, newname)
		if _, err := s.fs.Root().Lstat(to); err == nil {
			continue
		}
		s.copyTree(src, to, made)
	}
	return s.ok()
}

// xSource checks XCOPY's or XCPDIR's src: 1 when access is denied, missing
// when it cannot be stat'ed, wrong when kind rejects its mode, 0 when usable.
func (s *session) xSource(src string, missing, wrong tfproto.Code, kind func(fs.FileMode) bool) tfproto.Code {
	fi, err := s.fs.Root().Stat(src)
	switch {
	case err != nil && isAccessError(err):
		return tfproto.CodeAccessDenied
	case err != nil:
		return missing
	case !kind(fi.Mode()):
		return wrong
	}
	return 0
}

// xDirArgs parses "dir SP name" for XDEL and XRMDIR and checks dir: 16, 1,
// 30 lock(self), then missing (missingCode) and not a directory (20).
func (s *session) xDirArgs(args string, missingCode tfproto.Code) (dir, name string, answered bool, err error) {
	dirArg, name, ok := strings.Cut(args, " ")
	if !ok || name == "" {
		return "", "", true, s.fail(tfproto.CodeMissingParam)
	}
	dir, ok = s.resolve(dirArg)
	if !ok {
		return "", "", true, s.fail(tfproto.CodeAccessDenied)
	}
	if s.isLocked(dir) {
		return "", "", true, s.fail(tfproto.CodeLocked)
	}
	fi, err := s.fs.Root().Stat(dir)
	switch {
	case err != nil && isAccessError(err):
		return "", "", true, s.fail(tfproto.CodeAccessDenied)
	case errors.Is(err, fs.ErrNotExist), err != nil:
		return "", "", true, s.fail(missingCode)
	case !fi.IsDir():
		return "", "", true, s.fail(tfproto.CodeSrcNotDir)
	}
	return dir, name, false, nil
}

// XDEL (§5.19): removes every file, symlink or other non-directory below dir
// whose path ends with name; entries in a locked directory are skipped. 16, 1
// (also for a missing dir, as the reference), 30 lock(self), 20.
func cmdXDel(s *session, args string) error {
	dir, name, answered, err := s.xDirArgs(args, tfproto.CodeAccessDenied)
	if answered {
		return err
	}
	for _, e := range s.walkTree(dir, nil) {
		if e.dir || !matches(e.rel, name) || s.isLocked(parentOf(e.rel)) {
			continue
		}
		s.fs.Root().Remove(e.rel)
	}
	return s.ok()
}

// XRMDIR (§5.20): removes every directory below dir whose path ends with name,
// with RMDIR semantics (secure directories survive); a locked directory
// (lock(self)) is skipped. 16, 1, 30 lock(self of dir), 10 dir missing, 20.
func cmdXRmdir(s *session, args string) error {
	dir, name, answered, err := s.xDirArgs(args, tfproto.CodeDirNotExist)
	if answered {
		return err
	}
	for _, e := range s.walkTree(dir, nil) {
		if !e.dir || !matches(e.rel, name) || s.isLocked(e.rel) {
			continue
		}
		if _, err := s.fs.Root().Lstat(e.rel); err != nil {
			continue // removed with an ancestor
		}
		s.removeTree(e.rel, true)
	}
	return s.ok()
}
