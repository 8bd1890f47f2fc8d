package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/internal/auth/authtest"
)

// fsuidOf returns the filesystem uid in a /proc/<pid>/task/<tid>/status text
// ("Uid: real effective saved fs"), or -1.
func fsuidOf(status string) int {
	for _, l := range strings.Split(status, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" {
			n, _ := strconv.Atoi(f[4])
			return n
		}
	}
	return -1
}

// threadsWithFSUID counts this process's threads whose fsuid is uid.
func threadsWithFSUID(t *testing.T, uid int) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread exited meanwhile
		}
		if fsuidOf(string(b)) == uid {
			n++
		}
	}
	return n
}

// sharedDir makes a world-writable directory that any persona can reach.
func sharedDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "tfd-persona-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLookupPersona(t *testing.T) {
	authtest.RequireRoot(t)
	name := authtest.NewUser(t)
	p, err := LookupPersona(name)
	if err != nil {
		t.Fatal(err)
	}
	if p.UID == 0 || p.GID == 0 || len(p.Groups) == 0 || p.Groups[0] != p.GID || p.IsProcessUser() {
		t.Fatalf("persona %+v", p)
	}
	if _, err := LookupPersona("tfd-no-such-user-xyz"); !errors.Is(err, ErrNoSystemUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := CheckCapabilities(); err != nil {
		t.Fatalf("root lacks capabilities: %v", err)
	}
}

// TestPersonaThreadIsolation checks the design claims of persona_linux.go on the
// running kernel: after Become, the locked thread creates files as the user and
// is refused what the user may not do; goroutines it starts (which make the
// runtime create threads from the locked M) and the rest of the process keep the
// daemon's identity; and the thread is gone once its goroutine exits.
func TestPersonaThreadIsolation(t *testing.T) {
	authtest.RequireRoot(t)
	p, err := LookupPersona(authtest.NewUser(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := sharedDir(t)
	secret := filepath.Join(dir, "root-only")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	type result struct {
		err                 error
		created             string
		secretErr, chownErr error
		personaThreads      int
		childFSUIDs         []int
	}
	done := make(chan result)
	go func() {
		var r result
		defer func() { done <- r }()
		if r.err = p.Become(); r.err != nil {
			return
		}
		r.created = filepath.Join(dir, "made-by-persona")
		if r.err = os.WriteFile(r.created, []byte("y"), 0o644); r.err != nil {
			return
		}
		_, r.secretErr = os.ReadFile(secret)
		r.chownErr = os.Chown(r.created, 0, 0)
		// Start goroutines that block in syscalls at the same time: the
		// runtime wakes or creates Ms for them from this locked M.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := os.ReadFile("/proc/thread-self/status")
				unix.Nanosleep(&unix.Timespec{Nsec: 20e6}, nil)
				if err == nil {
					mu.Lock()
					r.childFSUIDs = append(r.childFSUIDs, fsuidOf(string(b)))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		r.personaThreads = threadsWithFSUID(t, p.UID)
		// The goroutine exits still locked: its thread must terminate.
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	st, err := os.Stat(r.created)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != p.UID || int(sys.Gid) != p.GID {
		t.Errorf("file made by the persona is owned by %d:%d, want %d:%d", sys.Uid, sys.Gid, p.UID, p.GID)
	}
	if !errors.Is(r.secretErr, os.ErrPermission) {
		t.Errorf("persona read a root-only 0600 file: %v", r.secretErr)
	}
	if !errors.Is(r.chownErr, unix.EPERM) {
		t.Errorf("persona chown to root: %v, want EPERM (CAP_CHOWN dropped)", r.chownErr)
	}
	if r.personaThreads != 1 {
		t.Errorf("%d threads had the persona's fsuid while it was active, want exactly 1", r.personaThreads)
	}
	for _, id := range r.childFSUIDs {
		if id != 0 {
			t.Errorf("a goroutine started by the persona ran with fsuid %d", id)
		}
	}
	// This goroutine was never touched.
	mine := filepath.Join(dir, "made-by-daemon")
	if err := os.WriteFile(mine, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(mine); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("daemon goroutine created a file not owned by root")
	}
	// The locked thread dies once its goroutine has exited. Its exit is
	// asynchronous to the channel send, so wait for it, generously.
	for i := 0; threadsWithFSUID(t, p.UID) != 0; i++ {
		if i == 1000 {
			t.Fatal("the persona's thread is still alive 10 s after its goroutine ended")
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
}

// TestBecomeWithoutCapabilities: a thread without CAP_SETUID/CAP_SETGID is
// reported by CheckCapabilities, and Become fails there instead of silently
// leaving the old identity (setfsuid reports no error; the second call exposes
// it). capset(2) changes only the calling thread, which dies with the goroutine.
func TestBecomeWithoutCapabilities(t *testing.T) {
	authtest.RequireRoot(t)
	p, err := LookupPersona(authtest.NewUser(t))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() {
		errc <- func() error {
			if err := p.Become(); err != nil { // locks the thread for good
				return err
			}
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				return err
			}
			data[0].Effective &^= 1<<capSetUID | 1<<capSetGID
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				return err
			}
			if CheckCapabilities() == nil {
				return errors.New("CheckCapabilities passed without CAP_SETUID/CAP_SETGID")
			}
			if err := setFS(unix.SetfsuidRetUid, p.UID+1); err == nil {
				return errors.New("setFS did not notice that setfsuid was refused")
			}
			other := &Persona{Name: "other", UID: p.UID + 1, GID: p.GID + 1, Groups: []int{p.GID + 1}}
			if err := other.Become(); err == nil {
				return errors.New("Become succeeded without capabilities")
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
