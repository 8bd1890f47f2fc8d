package server

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tfd-project/tfd/internal/config"
)

// Reloading the configuration (tfd serve does it on SIGHUP).
//
// The configuration in force is an immutable *config.Config behind an atomic
// pointer: Reload builds a new one and swaps it in, and code that needs a
// reloadable setting reads it through Config() at the moment it applies it (the
// handshake takes one snapshot for the whole handshake; the command loop reads
// the idle timeout before each wait). So a reload never disturbs a session in
// the middle of a command: new limits apply to new sessions at their handshake
// and to existing ones at their next wait for a command.
//
// What reloads: the session limits and timeouts, the user database file (its
// path; the auth family reads the file at every LOGIN) and the contents of the
// TLB pool file (the tlb family's hook re-reads it; its path needs a restart).
// Families with state built from the configuration plug in through the reload
// hook of their family (family.go): every hook first prepares (it may refuse
// the new configuration, and then nothing changes), and only when all have
// prepared are their commits run and the new configuration swapped in.
// Everything else (proto, hash, dbdir, the listen address, the keys, defusr,
// injail, the transparent proxy) needs a restart: Reload keeps the running
// value and says so in its log.

// reloadable lists the settings Reload changes, with how to print and copy them.
var reloadable = []struct {
	name string
	get  func(*config.Config) string
	set  func(dst, src *config.Config)
}{
	{"max-sessions", func(c *config.Config) string { return strconv.Itoa(c.MaxSessions) },
		func(d, s *config.Config) { d.MaxSessions = s.MaxSessions }},
	{"max-sessions-per-ip", func(c *config.Config) string { return strconv.Itoa(c.MaxSessionsPerIP) },
		func(d, s *config.Config) { d.MaxSessionsPerIP = s.MaxSessionsPerIP }},
	{"idle-timeout", func(c *config.Config) string { return c.IdleTimeout.String() },
		func(d, s *config.Config) { d.IdleTimeout = s.IdleTimeout }},
	{"handshake-timeout", func(c *config.Config) string { return c.HandshakeTimeout.String() },
		func(d, s *config.Config) { d.HandshakeTimeout = s.HandshakeTimeout }},
	{"shutdown-timeout", func(c *config.Config) string { return c.ShutdownTimeout.String() },
		func(d, s *config.Config) { d.ShutdownTimeout = s.ShutdownTimeout }},
	{"hpfi-max-buffer", func(c *config.Config) string { return strconv.FormatInt(c.HPFIMaxBuffer, 10) },
		func(d, s *config.Config) { d.HPFIMaxBuffer = s.HPFIMaxBuffer }},
	{"login-fail-delay", func(c *config.Config) string { return c.LoginFailDelay.String() },
		func(d, s *config.Config) { d.LoginFailDelay = s.LoginFailDelay }},
	{"userdb", func(c *config.Config) string { return c.UserDB },
		func(d, s *config.Config) { d.UserDB = s.UserDB }},
}

// restartOnly lists the settings a reload cannot change.
var restartOnly = []struct {
	name string
	get  func(*config.Config) string
}{
	{"proto", func(c *config.Config) string { return c.Proto }},
	{"hash", func(c *config.Config) string { return c.Hash }},
	{"dbdir", func(c *config.Config) string { return c.DBDir }},
	{"listen", func(c *config.Config) string { return c.ListenAddr() }},
	{"privkey", func(c *config.Config) string { return string(c.PrivKeyPEM) }},
	{"pubkey", func(c *config.Config) string { return string(c.PubKeyPEM) }},
	{"defusr", func(c *config.Config) string { return c.DefUser }},
	{"injail", func(c *config.Config) string { return strconv.FormatBool(c.InJail) }},
	{"tlb", func(c *config.Config) string { return c.TLB }},
	{"trp_ipv4", func(c *config.Config) string { return c.TRPIPv4 }},
	{"trp_ipv6", func(c *config.Config) string { return c.TRPIPv6 }},
	{"trp_dns", func(c *config.Config) string { return c.TRPDNS }},
}

// change is one setting a Reload changed.
type change struct {
	name     string
	old, new string
}

// Reload makes the reloadable settings of next the ones in force, without
// dropping sessions, and logs what changed. Settings that need a restart
// keep their running values (they are logged). If next is invalid, or a
// family refuses it, nothing changes and the error says why. Reloads are
// serialized; sessions may run concurrently.
func (s *Server) Reload(next *config.Config) error {
	if next == nil {
		return errors.New("reload: no configuration")
	}
	if next.MaxSessions < 0 || next.MaxSessionsPerIP < 0 || next.IdleTimeout < 0 || next.HandshakeTimeout < 0 ||
		next.ShutdownTimeout < 0 || next.HPFIMaxBuffer < 0 || next.LoginFailDelay < 0 {
		return errors.New("reload: negative limit")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.Config()
	// next on top of a copy of cur: only the reloadable settings move.
	nc := *cur
	nc.Warnings = next.Warnings
	var changes []change
	for _, r := range reloadable {
		r.set(&nc, next)
		if o, n := r.get(cur), r.get(&nc); o != n {
			changes = append(changes, change{name: r.name, old: o, new: n})
		}
	}
	for _, r := range restartOnly {
		if r.get(cur) != r.get(next) {
			s.log.Warn("reload: setting changed in the configuration but needs a restart; keeping the running value", "setting", r.name)
		}
	}
	if nc.MultiUser() != cur.MultiUser() {
		return fmt.Errorf("reload: userdb %q would switch multi-user mode %v → %v; that needs a restart", nc.UserDB, cur.MultiUser(), nc.MultiUser())
	}
	var commits []func()
	for _, f := range families {
		if f.reload == nil {
			continue
		}
		commit, err := f.reload(s, cur, &nc)
		if err != nil {
			return fmt.Errorf("reload %s: %w", f.name, err)
		}
		if commit != nil {
			commits = append(commits, commit)
		}
	}
	s.live.Store(&nc)
	for _, c := range commits {
		c()
	}
	for _, w := range nc.Warnings {
		s.log.Warn("reload: config", "warning", w)
	}
	if len(changes) == 0 {
		s.log.Info("config reloaded: no reloadable setting changed")
	}
	for _, c := range changes {
		s.log.Info("config reloaded", "setting", c.name, "old", c.old, "new", c.new)
	}
	return nil
}
