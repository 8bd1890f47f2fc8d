package notify

import (
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// Watcher wakes a notification session when something changes in one of its
// directories, through inotify (fsnotify). Directories it cannot watch — gone,
// on a filesystem whose changes inotify does not see (NFS, SMB, FUSE, …), or
// when inotify itself is unavailable — are reported by Polling, and the session
// then sweeps every interval, as the reference always does.
//
// A watch is added on the path /proc/self/fd/N of the directory opened through
// the session's os.Root, so no host path is ever built, and the watch is on
// exactly the directory the jail resolved. The descriptor stays open while the
// watch exists, which keeps N (and the inode number) from being reused.
//
// All methods except C must be called from the session's goroutine.
type Watcher struct {
	root    *os.Root
	entries []*Entry
	log     *slog.Logger

	w       *fsnotify.Watcher // nil: inotify unavailable, poll everything
	byID    map[fileID]*dirWatch
	byEntry []*dirWatch // nil: entry not watched (poll it unless inert)
	inert   []bool      // the entry's path is not a directory: nothing to find
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

type fileID struct{ dev, ino uint64 }

type dirWatch struct {
	id   fileID
	f    *os.File
	path string
	refs int
}

var forcePolling atomic.Bool

// ForcePolling makes watchers made from now on poll every directory instead of
// using inotify (for tests of the fallback, and for filesystems that lie about
// their events).
func ForcePolling(on bool) { forcePolling.Store(on) }

// NewWatcher prepares a watcher for entries; call Refresh to attach watches.
// It never fails: without inotify every entry is polled.
func NewWatcher(root *os.Root, entries []*Entry, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nw := &Watcher{root: root, entries: entries, log: log, byID: map[fileID]*dirWatch{},
		byEntry: make([]*dirWatch, len(entries)), inert: make([]bool, len(entries)), wake: make(chan struct{}, 1), done: make(chan struct{})}
	if forcePolling.Load() {
		return nw
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Info("notify: inotify unavailable; polling", "err", err)
		return nw
	}
	nw.w = w
	nw.wg.Add(1)
	go nw.forward()
	return nw
}

// forward turns events and errors (a queue overflow) into coalesced wake-ups.
func (nw *Watcher) forward() {
	defer nw.wg.Done()
	for {
		select {
		case _, ok := <-nw.w.Events:
			if !ok {
				return
			}
		case _, ok := <-nw.w.Errors:
			if !ok {
				return
			}
		case <-nw.done:
			return
		}
		select {
		case nw.wake <- struct{}{}:
		default:
		}
	}
}

// C is signalled when a watched directory may have changed.
func (nw *Watcher) C() <-chan struct{} { return nw.wake }

// Refresh makes every entry's watch follow its directory as the jail resolves
// it now: a directory that disappeared loses its watch (and is polled), one
// that came back or was replaced gets a new watch.
func (nw *Watcher) Refresh() {
	for i, e := range nw.entries {
		id, f, kind := nw.identify(e.Dir)
		nw.inert[i] = kind == notDir
		cur := nw.byEntry[i]
		if kind == isDir && cur != nil && cur.id == id {
			f.Close()
			continue
		}
		if cur != nil {
			nw.release(cur)
			nw.byEntry[i] = nil
		}
		if kind == isDir {
			nw.byEntry[i] = nw.attach(id, f)
		}
	}
}

type pathKind int

const (
	missing pathKind = iota
	notDir
	isDir
)

// identify opens dir through the root and, for a directory, returns its
// identity and the open directory (the caller owns it).
func (nw *Watcher) identify(dir string) (fileID, *os.File, pathKind) {
	f, err := nw.root.Open(dir)
	if err != nil {
		return fileID{}, nil, missing
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fileID{}, nil, missing
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.IsDir() {
		f.Close()
		return fileID{}, nil, notDir
	}
	return fileID{dev: st.Dev, ino: st.Ino}, f, isDir
}

// attach returns the watch for directory id, adding one if needed; it takes
// ownership of f. nil means the directory cannot be watched.
func (nw *Watcher) attach(id fileID, f *os.File) *dirWatch {
	if dw := nw.byID[id]; dw != nil {
		f.Close()
		dw.refs++
		return dw
	}
	if nw.w == nil || !inotifyWorks(f) {
		f.Close()
		return nil
	}
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := nw.w.Add(p); err != nil {
		nw.log.Debug("notify: cannot watch; polling", "err", err)
		f.Close()
		return nil
	}
	dw := &dirWatch{id: id, f: f, path: p, refs: 1}
	nw.byID[id] = dw
	return dw
}

func (nw *Watcher) release(dw *dirWatch) {
	dw.refs--
	if dw.refs > 0 {
		return
	}
	delete(nw.byID, dw.id)
	nw.w.Remove(dw.path) // fails harmlessly if the kernel already dropped it
	dw.f.Close()
}

// inotifyWorks reports whether changes to the directory reach inotify: not on
// network and user-space filesystems, whose remote changes it never sees.
func inotifyWorks(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_FS_MAGIC,
		unix.AFS_SUPER_MAGIC, unix.CODA_SUPER_MAGIC:
		return false
	}
	return true
}

// Polling reports whether some entry has no watch and must be swept every
// interval. An entry naming an existing file (ADDNTFY accepts one) is inert,
// not polled: the safety sweep notices if it ever becomes a directory.
func (nw *Watcher) Polling() bool {
	for i, dw := range nw.byEntry {
		if dw == nil && !nw.inert[i] {
			return true
		}
	}
	return false
}

// Close removes every watch and stops the forwarding goroutine.
func (nw *Watcher) Close() {
	for i, dw := range nw.byEntry {
		if dw != nil {
			nw.release(dw)
			nw.byEntry[i] = nil
		}
	}
	if nw.w != nil {
		close(nw.done)
		nw.w.Close()
		nw.wg.Wait()
	}
}
