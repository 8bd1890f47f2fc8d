package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tfd-project/tfd/internal/auth"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// The auth family: the security modes of the spec ("Security enhancement"),
// LOGIN, CHMOD, CHOWN and INJAIL (WIRE.md §4.2, §5.29–5.31, §5.35), and the
// per-address session limit.
//
// Modes, decided from the config at start (authStart):
//
//   - single-user (defusr USER): every session takes USER's file permissions
//     right after the handshake; no LOGIN. When USER is the daemon's own user
//     nothing needs to change.
//   - multi-user (userdb FILE, no defusr): a session may only run END, LOGIN,
//     KEEPALIVE and PROCKEY until LOGIN succeeds (the dispatcher's gate answers
//     FAILED 38 to anything else); LOGIN checks FILE and the session takes the
//     user's file permissions.
//   - neither: every session works as the daemon's own user (the embedded
//     default).
//
// "Takes the file permissions" is auth.Persona.Become: the session goroutine
// locks its OS thread and sets that thread's fsuid, fsgid and groups (the design
// and why it is safe are in internal/auth/persona_linux.go). Both persona modes
// need CAP_SETUID and CAP_SETGID; without them New refuses to start and says
// why. With injail configured, a session must INJAIL after the above and before
// anything but END (the gate answers FAILED 50).
func init() {
	registerFamily(family{
		name: "auth",
		commands: []command{
			{name: "LOGIN", run: cmdLogin, access: preLogin},
			{name: "CHMOD", run: cmdChmod},
			{name: "CHOWN", run: cmdChown},
			{name: "INJAIL", run: cmdInjail, access: preJail},
		},
		start:      authStart,
		sessionEnd: authSessionEnd,
		reload:     authReload,
	})
}

// authServer is the auth family's per-server state.
type authServer struct {
	// persona is the single-user identity every session takes after the
	// handshake (nil: sessions keep the daemon's identity until LOGIN).
	persona *auth.Persona

	mu    sync.Mutex
	perIP map[string]int // open sessions by remote IP (cfg.MaxSessionsPerIP)

	// personas counts sessions holding a locked persona thread.
	personas atomic.Int64
}

// maxPersonaSessions caps the sessions that hold a persona thread at once. Each
// such session keeps its own OS thread for its whole life (even while idle), and
// the Go runtime aborts the whole process when it exceeds its thread limit
// (10000 by default, runtime/debug.SetMaxThreads): a flood of logins must be
// refused, not crash the server.
var maxPersonaSessions int64 = 8000

// authSession is the auth family's per-session state.
type authSession struct {
	ip      string // the address this session is counted under ("" = not counted)
	user    string // the LOGIN user, for logs
	persona bool   // counted in authServer.personas
}

// reservePersona counts this session as holding a persona thread, or reports
// false when maxPersonaSessions are already held.
func (s *session) reservePersona() bool {
	if s.auth.persona {
		return true
	}
	if s.srv.auth.personas.Add(1) > maxPersonaSessions {
		s.srv.auth.personas.Add(-1)
		return false
	}
	s.auth.persona = true
	return true
}

func authStart(s *Server) error {
	cfg := s.cfg
	s.auth.perIP = make(map[string]int)
	switch {
	case cfg.DefUser != "":
		p, err := auth.LookupPersona(cfg.DefUser)
		if err != nil {
			return fmt.Errorf("single-user mode: defusr: %w", err)
		}
		if cfg.UserDB != "" {
			s.log.Warn("defusr is set, so sessions need no LOGIN and the userdb is not used", "defusr", cfg.DefUser, "userdb", cfg.UserDB)
		}
		if p.IsProcessUser() {
			s.log.Info("single-user mode as the daemon's own user", "user", p.Name, "uid", p.UID)
			return nil
		}
		if err := auth.CheckCapabilities(); err != nil {
			return fmt.Errorf("single-user mode as %s: %w", p.Name, err)
		}
		s.auth.persona = p
		s.log.Info("single-user mode", "user", p.Name, "uid", p.UID, "gid", p.GID)
	case cfg.MultiUser():
		if err := auth.CheckCapabilities(); err != nil {
			return fmt.Errorf("multi-user mode (userdb %s): %w", cfg.UserDB, err)
		}
		// The database is read again at every LOGIN; a missing or unreadable
		// one is not fatal (LOGIN answers FAILED 40 until it is fixed, as in
		// the reference), but it is reported now.
		db, err := auth.Load(cfg.UserDB)
		if err != nil {
			s.log.Error("multi-user mode: cannot read the user database; LOGIN answers FAILED 40 until it can", "err", err)
			break
		}
		for _, w := range db.Warnings() {
			s.log.Warn("userdb", "file", cfg.UserDB, "warning", w)
		}
		s.log.Info("multi-user mode: sessions must LOGIN", "userdb", cfg.UserDB, "users", len(db.Users()))
	default:
		s.log.Info("no defusr or userdb: every session works as the daemon's own user", "uid", os.Geteuid())
	}
	if cfg.InJail {
		s.log.Info("injail: sessions must INJAIL before any other command")
	}
	return nil
}

// authReload is the auth family's reload hook: in multi-user mode the user
// database the new configuration names must load (a broken or missing file
// refuses the reload, so the running one stays); LOGIN then reads it. Sessions
// already logged in keep their identity.
func authReload(s *Server, cur, next *config.Config) (func(), error) {
	if !next.MultiUser() {
		return nil, nil
	}
	db, err := auth.Load(next.UserDB)
	if err != nil {
		return nil, fmt.Errorf("user database: %w", err)
	}
	for _, w := range db.Warnings() {
		s.log.Warn("reload: userdb", "file", next.UserDB, "warning", w)
	}
	n := len(db.Users())
	return func() { s.log.Info("reload: user database", "file", next.UserDB, "users", n) }, nil
}

// admitIP counts the session against its remote IP's limit
// (cfg.MaxSessionsPerIP, 0 = none) and reports false when the limit is reached.
func (s *session) admitIP() bool {
	lim := s.srv.Config().MaxSessionsPerIP
	if lim <= 0 {
		return true
	}
	ip := remoteIP(s.nc.RemoteAddr())
	a := &s.srv.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perIP[ip] >= lim {
		return false
	}
	a.perIP[ip]++
	s.auth.ip = ip
	return true
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func authSessionEnd(s *session) {
	if s.auth.persona {
		s.srv.auth.personas.Add(-1)
	}
	if s.auth.ip == "" {
		return
	}
	a := &s.srv.auth
	a.mu.Lock()
	if a.perIP[s.auth.ip]--; a.perIP[s.auth.ip] <= 0 {
		delete(a.perIP, s.auth.ip)
	}
	a.mu.Unlock()
}

// startPersona runs at the end of the handshake: in single-user mode the
// session takes defusr's file permissions before its first command.
func (s *session) startPersona() error {
	p := s.srv.auth.persona
	if p == nil {
		return nil
	}
	if !s.reservePersona() {
		s.log.Warn("refused: too many sessions hold a persona thread", "max", maxPersonaSessions)
		s.conn.WriteFrameString(tfproto.FailedLine(tfproto.CodeMemory, "Too many sessions, try again later."))
		return handshakeError{"limit", errors.New("persona session limit reached")}
	}
	if err := p.Become(); err != nil {
		s.log.Error("cannot take the defusr identity", "user", p.Name, "err", err)
		s.conn.WriteFrameString(tfproto.CodeAccessDenied.Line())
		return fmt.Errorf("defusr %s: %w", p.Name, err)
	}
	return nil
}

// failDelay makes a failed LOGIN (or INJAIL token) cost the client
// cfg.LoginFailDelay. Only this session's goroutine sleeps: other sessions
// are not slowed down.
func (s *session) failDelay() {
	if d := s.srv.Config().LoginFailDelay; d > 0 {
		time.Sleep(d)
	}
}

// LOGIN user SP password (WIRE.md §5.29). The user is up to the first space,
// the password the rest (it may contain spaces). The user must be in the user
// database (exact name, constant-time password check; a plaintext reference
// entry works too) and be a system user.
//
//	OK; FAILED 39 already logged in (every single-user session is); 16 no
//	password; 40 the database cannot be read; 37 anything else, after the
//	failure delay.
func cmdLogin(s *session, args string) error {
	if s.loggedIn {
		return s.fail(tfproto.CodeAlreadyLogged)
	}
	name, password, _ := strings.Cut(args, " ")
	if name == "" || password == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	// Read on every LOGIN, so `tfd user` changes apply without a restart.
	db, err := auth.Load(s.srv.Config().UserDB)
	if err != nil {
		s.log.Error("LOGIN: cannot read the user database", "err", err)
		return s.fail(tfproto.CodeUserDB)
	}
	if !db.Verify(name, password) {
		return s.loginFailed(name, "unknown user or wrong password")
	}
	p, err := auth.LookupPersona(name)
	if err != nil {
		return s.loginFailed(name, err.Error())
	}
	if !s.reservePersona() {
		s.log.Warn("LOGIN refused: too many sessions hold a persona thread", "max", maxPersonaSessions)
		return s.fail(tfproto.CodeLoginFailed)
	}
	if err := p.Become(); err != nil {
		// The thread may hold part of the identity: end the session so it
		// dies with its goroutine.
		s.log.Error("LOGIN: cannot take the user's identity", "user", name, "err", err)
		s.fail(tfproto.CodeLoginFailed)
		return fmt.Errorf("login %s: %w", name, err)
	}
	s.loggedIn = true
	s.auth.user = name
	s.log = s.log.With("user", name)
	s.log.Info("login", "uid", p.UID, "gid", p.GID)
	return s.ok()
}

func (s *session) loginFailed(name, why string) error {
	s.log.Warn("login failed", "user", truncate(name, 64), "reason", why)
	s.failDelay()
	return s.fail(tfproto.CodeLoginFailed)
}

// CHMOD path SP mode (WIRE.md §5.30). The path ends at the first space (so
// paths with spaces cannot be named, as in the reference); the mode is the
// rest: 1 to 4 octal digits, the optional fourth (leading) one being the
// special bits (4 setuid, 2 setgid, 1 sticky), as chmod(1) takes them.
//
//	OK; FAILED 16 no mode (or no path); 1 the path is refused or not
//	reachable; 9 it does not exist; 41 the kernel refused (not the owner) or the
//	mode is not such an octal number.
//
// A mode that is present but not octal answers 41, not 16: the parameter is
// there, the change failed. The reference parses it as 0 and chmods the file to
// 0000 (so "CHMOD a b 755" emptied a's mode, WIRE.md §9 item 10); tfd changes
// nothing. Unlike the reference, every other error answers FAILED, never OK.
// Symlinks are followed inside the root, as chmod(2) does.
func cmdChmod(s *session, args string) error {
	p, modeText, _ := strings.Cut(args, " ")
	if p == "" || modeText == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(p)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	mode, ok := parseMode(modeText)
	if !ok {
		return s.fail(tfproto.CodeChmod)
	}
	err := s.fs.Root().Chmod(rel, mode)
	switch {
	case err == nil:
		return s.ok()
	case errors.Is(err, unix.EPERM):
		return s.fail(tfproto.CodeChmod)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return s.fail(tfproto.CodeFileNotExist)
	case isAccessError(err), errors.Is(err, unix.ELOOP):
		return s.fail(tfproto.CodeAccessDenied)
	}
	s.log.Debug("CHMOD", "path", rel, "err", err)
	return s.fail(tfproto.CodeChmod)
}

// parseMode reads 1–4 octal digits into a file mode with Go's special-bit
// flags (os.Chmod does not take the raw 04000/02000/01000 bits).
func parseMode(text string) (fs.FileMode, bool) {
	if len(text) > 4 {
		return 0, false
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '7' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(text, 8, 32)
	if err != nil {
		return 0, false
	}
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, true
}

// CHOWN path SP user SP group (WIRE.md §5.31): path and user end at the next
// space, the group is the rest. Names are resolved with os/user (names only,
// not numeric ids). The kernel decides who may chown: a root session may; a
// non-root persona may not give files away (it lacks CAP_CHOWN) and gets 44.
// Symlinks are followed inside the root, as chown(2) does.
//
//	OK; FAILED 16 a field is missing; 1 the path is refused or not reachable;
//	42 no such system user; 43 no such system group; 44 the change failed
//	(not permitted, or the path does not exist: the spec lists no 9 here).
func cmdChown(s *session, args string) error {
	p, rest, _ := strings.Cut(args, " ")
	uname, gname, _ := strings.Cut(rest, " ")
	if p == "" || uname == "" || gname == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(p)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	u, err := user.Lookup(uname)
	if err != nil {
		return s.fail(tfproto.CodeNoSuchUser)
	}
	g, err := user.LookupGroup(gname)
	if err != nil {
		return s.fail(tfproto.CodeNoSuchGroup)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(g.Gid)
	if err1 != nil || err2 != nil {
		return s.fail(tfproto.CodeChown)
	}
	err = s.fs.Root().Chown(rel, uid, gid)
	switch {
	case err == nil:
		return s.ok()
	case errors.Is(err, unix.EPERM):
		return s.fail(tfproto.CodeChown)
	case isAccessError(err), errors.Is(err, unix.ELOOP):
		return s.fail(tfproto.CodeAccessDenied)
	}
	s.log.Debug("CHOWN", "path", rel, "err", err)
	return s.fail(tfproto.CodeChown)
}

// INJAIL token SP|SP path (WIRE.md §5.35). Only with the config's injail;
// once per session. The token must be a whole line of path/jail.key, read with
// the session's own file permissions (as the reference, which has already
// switched user). Then the session's root becomes path: all later paths
// resolve there, and neither ".." nor symlinks lead out (os.Root). The jail's
// own jail.key is hidden from the session: it cannot be read, listed, changed
// or deleted (WIRE.md §9 item 9; vfs.FS.Hidden). An empty path jails at the
// current root.
//
//	OK; FAILED 51 injail is not configured or the session is already jailed;
//	16 no " | " or no token; 1 the path is refused; 48 path/jail.key cannot be
//	read; 49 the token is not in it (after the failure delay).
func cmdInjail(s *session, args string) error {
	if !s.srv.cfg.InJail || s.jailed {
		return s.fail(tfproto.CodeAlreadyJailed)
	}
	token, p, ok := strings.Cut(args, " | ")
	if !ok || token == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	rel, ok := s.resolve(p)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	f, err := s.fs.Root().Open(path.Join(rel, vfs.JailKeyName))
	if err != nil {
		if errors.Is(vfs.MapError(err), vfs.ErrAccess) {
			return s.fail(tfproto.CodeAccessDenied)
		}
		return s.fail(tfproto.CodeJailACL)
	}
	match, err := auth.JailTokenOK(f, token)
	f.Close()
	if err != nil {
		return s.fail(tfproto.CodeJailACL)
	}
	if !match {
		s.log.Warn("INJAIL: token not accepted", "dir", rel)
		s.failDelay()
		return s.fail(tfproto.CodeJailToken)
	}
	jail, err := s.fs.Jail(rel)
	if err != nil {
		return s.failErr(err, tfproto.CodeJailACL)
	}
	if s.ownFS {
		s.fs.Close()
	}
	s.fs, s.ownFS = jail, true
	s.jailed = true
	s.log.Info("injail", "dir", rel)
	return s.ok()
}
