package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/vfs"
	"github.com/tfd-project/tfd/tfproto"
)

// session is one client connection.
type session struct {
	srv   *Server
	id    uint64
	nc    net.Conn
	conn  *tfproto.Conn
	log   *slog.Logger
	start time.Time

	// fs is the session's jailed root: the server's shared dbdir root, or the
	// session's own INJAIL directory (ownFS).
	fs    *vfs.FS
	ownFS bool
	// loggedIn is true once LOGIN succeeded, or from the handshake on in
	// single-user mode.
	loggedIn bool
	// jailed is true once INJAIL succeeded.
	jailed bool
	// prockey is this session's unique key (PROCKEY), made on first use.
	prockey string
	// result is the metrics label of the current command's reply, set by the
	// reply helpers.
	result string
	// auth is the auth family's state (cmd_auth.go).
	auth authSession
	// lockName is the LOCK file name ("" = locking off).
	lockName string
	// tlb is the session's TLB rotation (tlb.go).
	tlb tlbSession
	// chk is the netcheck family's state: OOB counter and registrations.
	chk netcheckSession
	// ntfy is the notification family's watch list.
	ntfy notifySession
}

func newSession(srv *Server, nc net.Conn, id uint64) *session {
	s := &session{srv: srv, id: id, nc: nc, conn: tfproto.NewConn(nc), start: time.Now()}
	s.log = srv.log.With("session", id, "remote", nc.RemoteAddr().String())
	return s
}

// serve runs the session to its end and releases everything it holds.
func (s *session) serve(ctx context.Context) {
	s.log.Info("session start")
	s.srv.metrics.SessionOpened()
	reason := "closed"
	defer func() {
		if r := recover(); r != nil {
			// A handler bug must cost this session only, never the process.
			reason = fmt.Sprintf("panic: %v", r)
			s.log.Error("session panic", "panic", r)
		}
		s.endFamilies()
		if s.ownFS {
			s.fs.Close()
		}
		s.conn.Close()
		rx, tx := s.conn.Counters()
		s.srv.metrics.SessionClosed(rx, tx)
		s.log.Info("session end", "reason", reason, "duration", time.Since(s.start).Round(time.Millisecond), "rx_bytes", rx, "tx_bytes", tx)
	}()
	s.startFamilies()
	if quick := tuneConn(s.nc); quick != nil {
		s.conn.AfterRead = quick
	}
	if err := s.handshake(); err != nil {
		reason = "handshake: " + err.Error()
		var hf handshakeError
		if errors.As(err, &hf) {
			s.srv.metrics.HandshakeFailed(hf.reason)
		} else {
			s.srv.metrics.HandshakeFailed("io")
		}
		return
	}
	err := s.commandLoop(ctx)
	switch {
	case errors.Is(err, errEnd):
		reason = "END"
	case errors.Is(err, io.EOF):
		reason = "client closed"
	case err != nil:
		reason = err.Error()
	}
}

// handshake runs the server side of WIRE.md §2 under the handshake deadline.
// Every failure is answered with its FAILED line (plain before the cipher,
// enciphered after it) and ends the session.
func (s *session) handshake() error {
	cfg := s.srv.Config()
	if cfg.HandshakeTimeout > 0 {
		s.nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
		defer s.nc.SetDeadline(time.Time{})
	}
	if lim := cfg.MaxSessions; lim > 0 && s.srv.ActiveSessions() > lim {
		// Read nothing: say why at once, as a plain status line the client's
		// version check can show, then close.
		s.conn.WriteFrameString(tfproto.FailedLine(tfproto.CodeMemory, "Too many sessions, try again later."))
		return handshakeError{"limit", errors.New("session limit reached")}
	}
	if !s.admitIP() {
		s.conn.WriteFrameString(tfproto.FailedLine(tfproto.CodeMemory, "Too many sessions from your address, try again later."))
		return handshakeError{"limit", errors.New("per-address session limit reached")}
	}
	ver, err := s.conn.ReadFrame(tfproto.MaxFrame)
	if err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	if cString(ver) != cfg.Proto {
		s.conn.WriteFrameString(tfproto.CodeIncompatibleProto.Line())
		return handshakeError{"version", fmt.Errorf("protocol version %q does not match", truncate(cString(ver), 40))}
	}
	if err := s.conn.WriteFrameString(tfproto.OK); err != nil {
		return err
	}
	body, err := s.conn.ReadFrame(tfproto.MaxFrame)
	if err != nil {
		return fmt.Errorf("read session key: %w", err)
	}
	key, err := tfproto.DecryptSessionKey(s.srv.priv, body)
	if err != nil {
		s.conn.WriteFrameString(tfproto.CodeBadRSA.Line())
		return handshakeError{"rsa", err}
	}
	if err := s.conn.WriteFrameString(tfproto.OK); err != nil {
		return err
	}
	s.conn.SetCiphers(tfproto.NewCipher(key), tfproto.NewCipher(key))
	hash, err := s.conn.ReadFrame(tfproto.MaxFrame)
	if err != nil {
		return fmt.Errorf("read hash: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(cString(hash)), []byte(cfg.Hash)) != 1 {
		s.conn.WriteFrameString(tfproto.CodeInvalidHash.Line())
		return handshakeError{"hash", errors.New("invalid hash")}
	}
	s.fs = s.srv.rootFS // shared until INJAIL gives the session a root of its own
	s.loggedIn = !cfg.MultiUser()
	if err := s.startPersona(); err != nil {
		return err
	}
	return s.conn.WriteFrameString(tfproto.OK)
}

// handshakeError is a handshake refused for a reason a metric counts.
type handshakeError struct {
	reason string
	err    error
}

func (e handshakeError) Error() string { return e.err.Error() }
func (e handshakeError) Unwrap() error { return e.err }

// cString returns b up to its first NUL: the reference compares the version
// and the hash as C strings, so a trailing NUL is tolerated.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// commandLoop reads and runs commands until the client ends the session, the
// connection fails or ctx ends (then the loop stops after the current command).
func (s *session) commandLoop(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		// Wake a session blocked waiting for its next command; one that is
		// running a command finishes it first (see shutdown).
		s.nc.SetReadDeadline(time.Now())
	})
	defer stop()
	for {
		if ctx.Err() != nil {
			return errors.New("server shutting down")
		}
		// Read per command: a reload applies at the next wait.
		idle := s.srv.Config().IdleTimeout
		if idle > 0 {
			s.nc.SetReadDeadline(time.Now().Add(idle))
		}
		body, err := s.conn.ReadFrame(tfproto.MaxFrame)
		if err != nil {
			if ctx.Err() != nil {
				return errors.New("server shutting down")
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return errors.New("idle timeout")
			}
			return err
		}
		if idle > 0 {
			s.nc.SetReadDeadline(time.Time{})
		}
		if err := s.dispatch(body); err != nil {
			return err
		}
	}
}

// dispatch runs one command body and counts it by name and result.
func (s *session) dispatch(body []byte) error {
	name, args := parseCommand(body)
	cmd := commandTable[name]
	label := metrics.ResultUnknown
	if cmd != nil {
		label = cmd.name
	}
	s.result = metrics.ResultRaw
	defer func() { s.srv.metrics.Command(label, s.result) }()
	if code, ok := s.gate(cmd); !ok {
		return s.fail(code)
	}
	if cmd == nil {
		return s.unknown()
	}
	return cmd.run(s, args)
}

// gate applies WIRE.md §4.2: before LOGIN only preLogin commands run (an unknown
// command gets 38 too); with injail configured, a logged-in session that is not
// jailed yet may only run preJail commands.
func (s *session) gate(cmd *command) (tfproto.Code, bool) {
	var acc access
	if cmd != nil {
		acc = cmd.access
	}
	if !s.loggedIn && acc&preLogin == 0 {
		return tfproto.CodeBeforeLogin, false
	}
	if s.loggedIn && s.srv.Config().InJail && !s.jailed && acc&preJail == 0 {
		return tfproto.CodeBeforeInjail, false
	}
	return 0, true
}

// Replies. Every reply is one framed message in one write.

// ok replies a bare OK.
func (s *session) ok() error {
	s.result = metrics.ResultOK
	return s.conn.WriteFrameString(tfproto.OK)
}

func (s *session) okText(text string) error {
	s.result = metrics.ResultOK
	return s.conn.WriteFrameString(tfproto.OK + " " + text)
}

func (s *session) fail(code tfproto.Code) error {
	s.result = metrics.FailedResult(int(code))
	return s.conn.WriteFrameString(code.Line())
}

func (s *session) unknown() error {
	s.result = metrics.ResultUnknown
	return s.conn.WriteFrameString(tfproto.Unknown)
}
