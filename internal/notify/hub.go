package notify

import (
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// Hub is one server's inotify instance (through fsnotify), shared by all its
// notification sessions: the kernel allows few instances per user (often 128),
// but many watches. Each directory is watched once however many sessions
// listen to it, and every change wakes each of them.
//
// A watch is added on the path /proc/self/fd/N of the directory that a session
// opened through its os.Root, so no host path is ever built and the watch is on
// exactly the directory the jail resolved. The hub keeps that descriptor open
// while the watch exists, which keeps N (and the inode number) from being
// reused. Attach is called on the session's goroutine, so inotify checks the
// session's own credentials.
type Hub struct {
	log *slog.Logger

	mu     sync.Mutex
	w      *fsnotify.Watcher // made on the first Attach
	dirs   map[fileID]*hubDir
	paths  map[string]*hubDir
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

type fileID struct{ dev, ino uint64 }

type hubDir struct {
	id   fileID
	f    *os.File
	path string
	subs map[chan struct{}]int // session wake channel → entries using it
}

// NewHub returns a hub; it starts goroutines only when something is watched.
func NewHub(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{log: log, dirs: map[fileID]*hubDir{}, paths: map[string]*hubDir{}, done: make(chan struct{})}
}

// attach subscribes wake to changes in directory id, open as f, and takes f.
// It reports false when the directory cannot be watched (the caller polls it).
func (h *Hub) attach(id fileID, f *os.File, wake chan struct{}) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.dirs[id]; d != nil {
		f.Close()
		d.subs[wake]++
		return true
	}
	if h.closed || forcePolling.Load() || !inotifyWorks(f) {
		f.Close()
		return false
	}
	if h.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			h.log.Warn("notify: inotify unavailable; polling", "err", err)
			f.Close()
			return false
		}
		h.w = w
		h.wg.Add(1)
		go h.dispatch(w)
	}
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := h.w.Add(p); err != nil {
		h.log.Debug("notify: cannot watch; polling", "err", err)
		f.Close()
		return false
	}
	d := &hubDir{id: id, f: f, path: p, subs: map[chan struct{}]int{wake: 1}}
	h.dirs[id] = d
	h.paths[p] = d
	return true
}

// detach undoes one attach of wake to directory id.
func (h *Hub) detach(id fileID, wake chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.dirs[id]
	if d == nil {
		return
	}
	if d.subs[wake]--; d.subs[wake] <= 0 {
		delete(d.subs, wake)
	}
	if len(d.subs) > 0 {
		return
	}
	delete(h.dirs, id)
	delete(h.paths, d.path)
	if h.w != nil {
		h.w.Remove(d.path) // fails harmlessly if the kernel already dropped it
	}
	d.f.Close()
}

// Watches returns how many directories are watched.
func (h *Hub) Watches() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.dirs)
}

// dispatch wakes the subscribers of the directory an event is about; an error
// (a queue overflow: events were lost) wakes everyone.
func (h *Hub) dispatch(w *fsnotify.Watcher) {
	defer h.wg.Done()
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			h.mu.Lock()
			d := h.paths[ev.Name] // the directory itself (removed, moved)
			if d == nil {
				d = h.paths[parentPath(ev.Name)]
			}
			if d != nil {
				for c := range d.subs {
					signal(c)
				}
			}
			h.mu.Unlock()
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			h.mu.Lock()
			for _, d := range h.dirs {
				for c := range d.subs {
					signal(c)
				}
			}
			h.mu.Unlock()
		case <-h.done:
			return
		}
	}
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}

// signal is a coalescing, non-blocking wake-up.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close stops the hub: every watch goes, and sessions still running poll.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	w := h.w
	for id, d := range h.dirs {
		d.f.Close()
		delete(h.dirs, id)
		delete(h.paths, d.path)
	}
	h.mu.Unlock()
	close(h.done)
	if w != nil {
		w.Close()
		h.wg.Wait()
	}
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
