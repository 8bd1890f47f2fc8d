package auth

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Persona without fork.
//
// The reference daemon forks a process per connection and calls setgid/setuid
// after LOGIN. tfd serves every session from one goroutine in one process, and
// the process's credentials are shared by all sessions, so it cannot call
// setuid. Linux, however, keeps credentials per thread, and the credentials the
// kernel uses for file access checks are the *filesystem* uid and gid
// (setfsuid(2), setfsgid(2)) plus the supplementary groups (setgroups(2)). So:
//
//  1. The session's goroutine calls runtime.LockOSThread: from then on it alone
//     runs on its OS thread, and it always runs there.
//  2. It sets that thread's supplementary groups with the raw SYS_SETGROUPS
//     syscall, then its fsgid and fsuid. The raw syscall matters: Go's
//     syscall.Setgroups and unix.Setgroups deliberately apply the change to
//     every thread of the process (via AllThreadsSyscall, to give POSIX
//     semantics), which would hand one user's groups to every session.
//     setfsuid/setfsgid report no error; they return the previous id, so each
//     is called twice and the second return value proves the first call took.
//     When the fsuid changes from 0 to non-zero the kernel also drops the
//     file-system capabilities (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, …) from
//     the thread's effective set (capabilities(7)), so the persona cannot
//     override permissions or give files away: CHOWN fails with EPERM.
//  3. It never unlocks. When the session ends its goroutine exits while still
//     locked, and the Go runtime then terminates the thread instead of putting
//     it back in the pool (runtime.LockOSThread's documentation; golang/go#20395,
//     Go 1.10), so no other goroutine ever runs with these credentials.
//     One exception: the process's main thread (the runtime's m0) is never
//     terminated; a locked goroutine that exits there leaves the thread parked
//     for good ("This is the main thread. Just wedge it", runtime/proc.go
//     mexit). Become therefore refuses to run on the main thread, and binaries
//     that serve sessions lock their main goroutine to the main thread from an
//     init function (LockMainThread), so that no session goroutine is ever
//     scheduled there.
//  4. New threads never inherit them. A thread created by clone(2) copies its
//     creator's credentials, but since Go 1.10 the runtime never creates an M
//     from a locked M: runtime.newm checks gp.m.lockedExt and hands the clone to
//     a "template thread" kept in a known-good state, which LockOSThread starts
//     before the first lock ("We're on a locked M … We don't want to clone that
//     into another thread. Instead, ask a known-good thread to create the thread
//     for us", runtime/proc.go newm and templateThread; golang/go#20676,
//     CL 46033; the reuse bug golang/go#28979 was fixed in Go 1.12).
//     TestPersonaThreadIsolation checks both facts on the running kernel.
//
// Consequences for the rest of the server: every path-based file operation of a
// session (open, mkdir, stat, rename, unlink, chmod, …) must run on the session
// goroutine itself. Goroutines it spawns run on other threads with the daemon's
// credentials, so they may only do I/O on descriptors that are already open.
// The thread keeps the daemon's real and effective uid (root) and its other
// capabilities (CAP_SETUID, CAP_SETGID); only the code of the session runs on
// it, and that code never calls anything but the file API.
//
// Nothing in the daemon may call syscall.Setuid/Setgid/Setgroups (or their
// unix equivalents): Go applies those to every thread, and a change of the
// effective uid also resets each thread's fsuid, which would silently undo every
// session's persona.
//
// Every switch needs CAP_SETUID and CAP_SETGID (setgroups needs CAP_SETGID even
// for one's own groups), so modes that need a persona check for them at start-up
// (CheckCapabilities) and refuse to start without them.

// Persona is a system user whose file permissions a session takes.
type Persona struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups, including GID
}

// ErrNoSystemUser is returned by LookupPersona for a name that is not a user of
// this system.
var ErrNoSystemUser = errors.New("no such system user")

// LookupPersona resolves a system user name with os/user (passwd and group
// databases): uid, primary gid and supplementary groups.
func LookupPersona(name string) (*Persona, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unk user.UnknownUserError
		if errors.As(err, &unk) {
			return nil, fmt.Errorf("%w: %s", ErrNoSystemUser, name)
		}
		return nil, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	p := &Persona{Name: name, UID: uid, GID: gid, Groups: []int{gid}}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", name, err)
	}
	for _, s := range ids {
		g, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("user %s: non-numeric group id %q", name, s)
		}
		if g != gid {
			p.Groups = append(p.Groups, g)
		}
	}
	return p, nil
}

// IsProcessUser reports whether p is the user the daemon already runs as (same
// effective uid and gid), so that no switch is needed.
func (p *Persona) IsProcessUser() bool {
	return p.UID == os.Geteuid() && p.GID == os.Getegid()
}

// Become locks the calling goroutine to its OS thread for good and gives that
// thread p's filesystem identity (see the design note above). It must be called
// on the session's own goroutine, and that goroutine must never call
// runtime.UnlockOSThread. If Become fails the thread may hold part of the
// identity: the caller must end the session (the thread dies with it).
func (p *Persona) Become() error {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		return errors.New("refusing to give the process's main thread a persona: the runtime never ends that thread (call auth.LockMainThread from an init function of package main)")
	}
	gids := make([]uint32, len(p.Groups))
	for i, g := range p.Groups {
		gids[i] = uint32(g)
	}
	var ptr *uint32
	if len(gids) > 0 {
		ptr = &gids[0]
	}
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(unsafe.Pointer(ptr)), 0); e != 0 {
		return fmt.Errorf("setgroups for %s: %w", p.Name, e)
	}
	runtime.KeepAlive(gids)
	if err := setFS(unix.SetfsgidRetGid, p.GID); err != nil {
		return fmt.Errorf("setfsgid(%d) for %s: %w", p.GID, p.Name, err)
	}
	if err := setFS(unix.SetfsuidRetUid, p.UID); err != nil {
		return fmt.Errorf("setfsuid(%d) for %s: %w", p.UID, p.Name, err)
	}
	return nil
}

// LockMainThread wires the calling goroutine to the thread it runs on for
// good. Called from an init function of package main (or of a test package),
// it keeps the main goroutine on the process's main thread, so no session
// goroutine ever runs there (see Become). Init functions run on the main
// thread, and LockOSThread there makes main run on it too (runtime docs).
func LockMainThread() { runtime.LockOSThread() }

// setFS calls setfsuid or setfsgid, then calls it again with the same id: the
// second call returns the id in force, which must be the one asked for.
func setFS(set func(int) (int, error), id int) error {
	if _, err := set(id); err != nil {
		return err
	}
	now, err := set(id)
	if err != nil {
		return err
	}
	if now != id {
		return fmt.Errorf("id is still %d (missing CAP_SETUID/CAP_SETGID?)", now)
	}
	return nil
}

// Linux capability numbers (linux/capability.h).
const (
	capSetGID = 6
	capSetUID = 7
)

// CheckCapabilities returns an error naming what is missing unless the process
// may switch file-system identities: CAP_SETUID and CAP_SETGID in its effective
// set (root has both; otherwise grant them, e.g. with systemd's
// AmbientCapabilities=CAP_SETUID CAP_SETGID or setcap).
func CheckCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	var missing []string
	if data[0].Effective&(1<<capSetUID) == 0 {
		missing = append(missing, "CAP_SETUID")
	}
	if data[0].Effective&(1<<capSetGID) == 0 {
		missing = append(missing, "CAP_SETGID")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the daemon (uid %d) lacks %v, which it needs to take each user's file permissions; run tfd as root or grant them (systemd: AmbientCapabilities=CAP_SETUID CAP_SETGID)", os.Geteuid(), missing)
	}
	return nil
}
