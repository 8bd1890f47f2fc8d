package notify

import (
	"os"
	"sync/atomic"
	"syscall"
)

// Watcher follows one notification session's directories: it keeps each
// entry's directory attached to the server's Hub, so that a change wakes the
// session (C), and tells which entries must be polled instead (Polling): a
// directory that is gone, one on a filesystem whose changes inotify does not
// see (NFS, SMB, FUSE, …), or any when inotify is unavailable. The session then
// sweeps every interval, as the reference always does.
//
// All methods except C must be called from the session's goroutine.
type Watcher struct {
	hub     *Hub // nil: poll everything
	root    *os.Root
	entries []*Entry

	byEntry []*fileID // attached directory; nil: not watched
	inert   []bool    // the entry's path is not a directory: nothing to find
	wake    chan struct{}
}

var forcePolling atomic.Bool

// ForcePolling makes hubs watch nothing from now on, so every directory is
// polled (for tests of the fallback, and for filesystems that lie about their
// events).
func ForcePolling(on bool) { forcePolling.Store(on) }

// NewWatcher prepares a watcher for entries on hub (nil: poll everything);
// call Refresh to attach the directories.
func NewWatcher(hub *Hub, root *os.Root, entries []*Entry) *Watcher {
	return &Watcher{hub: hub, root: root, entries: entries, byEntry: make([]*fileID, len(entries)),
		inert: make([]bool, len(entries)), wake: make(chan struct{}, 1)}
}

// C is signalled when a watched directory may have changed.
func (nw *Watcher) C() <-chan struct{} { return nw.wake }

// Refresh makes every entry's watch follow its directory as the jail resolves
// it now: a directory that disappeared loses its watch (and is polled), one
// that came back or was replaced is watched again.
func (nw *Watcher) Refresh() {
	for i, e := range nw.entries {
		id, f, kind := nw.identify(e.Dir)
		nw.inert[i] = kind == notDir
		cur := nw.byEntry[i]
		if kind == isDir && cur != nil && *cur == id {
			f.Close()
			continue
		}
		if cur != nil {
			nw.hub.detach(*cur, nw.wake)
			nw.byEntry[i] = nil
		}
		if kind != isDir {
			continue
		}
		if nw.hub != nil && nw.hub.attach(id, f, nw.wake) {
			nw.byEntry[i] = &id
		} else if nw.hub == nil {
			f.Close()
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

// Polling reports whether some entry has no watch and must be swept every
// interval. An entry naming an existing file (ADDNTFY accepts one) is inert,
// not polled: the safety sweep notices if it ever becomes a directory.
func (nw *Watcher) Polling() bool {
	for i, id := range nw.byEntry {
		if id == nil && !nw.inert[i] {
			return true
		}
	}
	return false
}

// Close detaches every directory.
func (nw *Watcher) Close() {
	for i, id := range nw.byEntry {
		if id != nil {
			nw.hub.detach(*id, nw.wake)
			nw.byEntry[i] = nil
		}
	}
}
