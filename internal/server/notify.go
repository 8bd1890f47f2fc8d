package server

import (
	"bytes"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tfd-project/tfd/internal/notify"
	"github.com/tfd-project/tfd/tfproto"
)

// The notification family (WIRE.md §5.41–5.42, §P row 13): ADDNTFY builds the
// session's watch list; STARTNTFY turns the session into notification mode for
// good.
func init() {
	registerFamily(family{
		name: "notify",
		commands: []command{
			{name: "ADDNTFY", run: cmdAddNtfy},
			{name: "STARTNTFY", run: cmdStartNtfy},
		},
		start: func(s *Server) error { s.ntfy = notify.NewHub(s.log); return nil },
		stop:  func(s *Server) { s.ntfy.Close() },
	})
}

// notifySession is the session's watch list.
type notifySession struct {
	entries []*notify.Entry
}

// SafetySweep is how often a session whose directories are all watched by
// inotify sweeps anyway (or every interval, if longer). It catches what
// inotify cannot report: a watched directory re-created under a renamed
// parent, or a change on a network filesystem taken for local.
const SafetySweep = 30 * time.Second

// ADDNTFY token SP path. The token is the bytes up to the first space; the
// path is the rest ("" = the root). A token longer than 7 bytes, ".", ".." or
// one containing "/" → FAILED 5 (the reference silently cuts a long token and
// then misreads the path; tfd refuses it). A path outside the jail → FAILED 1;
// a missing path → FAILED 5. An existing path that is not a directory is
// accepted, as the reference does and the official Python client's tests
// expect; such an entry never yields a notification. Each OK appends an entry;
// indices are 0-based in that order.
func cmdAddNtfy(s *session, args string) error {
	token, dir, _ := strings.Cut(args, " ")
	if err := notify.CheckToken(token); err != nil {
		return s.fail(tfproto.CodeNotifyAdd)
	}
	if len(s.ntfy.entries) >= notify.MaxEntries {
		return s.fail(tfproto.CodeNotifyAdd)
	}
	rel, ok := s.resolve(dir)
	if !ok {
		return s.fail(tfproto.CodeAccessDenied)
	}
	if _, err := s.fs.Root().Stat(rel); err != nil {
		return s.failErr(err, tfproto.CodeNotifyAdd)
	}
	hidden := func(name string) bool { return s.fs.Hidden(path.Join(rel, name)) }
	s.ntfy.entries = append(s.ntfy.entries, &notify.Entry{Token: token, Dir: rel, Hidden: hidden})
	return s.ok()
}

// STARTNTFY interval. With an empty list: FAILED 6 and the session stays in
// standard mode. Otherwise there is no OK: the session sends "<i> <name>"
// messages and reads one answer after each, until the client answers END,
// closes the connection, or the server shuts down.
func cmdStartNtfy(s *session, args string) error {
	if len(s.ntfy.entries) == 0 {
		return s.fail(tfproto.CodeNotifyEmpty)
	}
	return s.notifyMode(notify.ParseInterval(args))
}

// Client answers in notification mode.
type verdict int

const (
	verdictKeep verdict = iota
	verdictDel
	verdictEnd
)

// answer is one frame the client sent, or the read error that ends the mode.
type answer struct {
	v   verdict
	err error
}

// notifyMode runs the notification loop on the session goroutine, which does
// every directory read, unlink and watch change. Other goroutines only move
// bytes: one reads the client's frames (so a close is seen while idle), and
// the server's notify.Hub forwards inotify wake-ups.
//
// A sweep visits the entries in order and sends at most one file per entry.
// After a sweep that sent something the next one follows an interval later;
// after an empty one the session waits for a change in a watched directory
// (or, for directories that cannot be watched, the interval; for the others
// SafetySweep), and sweeps no sooner than an interval after the previous one.
func (s *session) notifyMode(interval time.Duration) error {
	s.log.Info("notification mode", "entries", len(s.ntfy.entries), "interval", interval)
	answers, stopReader := s.startAnswerReader()
	defer stopReader()
	root := s.fs.Root()
	w := notify.NewWatcher(s.srv.ntfy, root, s.ntfy.entries)
	defer w.Close()

	// Go 1.23 timers: after Stop, no stale tick is ever received.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// wait blocks until d has passed (d ≤ 0: not at all) or, with changes, until
	// a watched directory changed. Frames the client sends meanwhile are
	// unsolicited: END ends the session, anything else is ignored.
	wait := func(d time.Duration, changes <-chan struct{}) error {
		if d <= 0 {
			return nil
		}
		timer.Reset(d)
		defer timer.Stop()
		for {
			select {
			case <-timer.C:
				return nil
			case <-changes:
				return nil
			case a := <-answers:
				if a.err != nil {
					return a.err
				}
				if a.v == verdictEnd {
					return errEnd
				}
				s.log.Debug("notify: ignoring a frame sent while idle")
			}
		}
	}

	for {
		w.Refresh()
		last := time.Now()
		sent := false
		for i, e := range s.ntfy.entries {
			name, id, ok := e.Find(root)
			if !ok {
				continue
			}
			sent = true
			if err := s.conn.WriteFrameString(strconv.Itoa(i) + " " + name); err != nil {
				return err
			}
			a := <-answers
			if a.err != nil {
				return a.err
			}
			switch a.v {
			case verdictEnd:
				return errEnd
			case verdictDel:
				if err := e.Unlink(root, name); err != nil {
					// Do not notify it again and again.
					s.log.Warn("notify: DEL failed", "err", err)
					e.Ack(name, id)
				}
			default:
				e.Ack(name, id)
			}
		}
		if !sent {
			idle := max(interval, SafetySweep)
			if w.Polling() {
				idle = interval
			}
			if err := wait(idle, w.C()); err != nil {
				return err
			}
		}
		if err := wait(time.Until(last.Add(interval)), nil); err != nil {
			return err
		}
	}
}

// startAnswerReader reads the client's frames on a goroutine of its own and
// delivers their verdicts; stop unblocks and waits for it. The connection is
// not usable for anything else afterwards, which is fine: notification mode
// ends only with the session.
func (s *session) startAnswerReader() (<-chan answer, func()) {
	ch := make(chan answer)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			body, err := s.conn.ReadFrame(tfproto.MaxFrame)
			a := answer{err: err}
			if err == nil {
				a.v = parseVerdict(body)
			}
			select {
			case ch <- a:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() {
		close(done)
		s.nc.SetReadDeadline(time.Unix(1, 0))
		<-exited
	}
}

// parseVerdict upper-cases the answer (as a C string) and compares it whole.
func parseVerdict(body []byte) verdict {
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	switch {
	case len(body) == 3 && bytes.EqualFold(body, []byte("DEL")):
		return verdictDel
	case len(body) == 3 && bytes.EqualFold(body, []byte("END")):
		return verdictEnd
	}
	return verdictKeep
}
