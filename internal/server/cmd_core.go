package server

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// The core family: session control, echo, dates, the process key and free
// space (WIRE.md §5.1, §5.2, §5.8, §5.9, §5.23, §5.24).
func init() {
	registerFamily(family{name: "core", commands: []command{
		{name: "END", run: cmdEnd, access: preLogin | preJail},
		{name: "ECHO", run: cmdEcho},
		{name: "DATE", run: cmdDate},
		{name: "UDATE", run: cmdUDate},
		{name: "NDATE", run: cmdNDate},
		{name: "DATEF", run: cmdDateF},
		{name: "DTOF", run: cmdDTOF},
		{name: "FTOD", run: cmdFTOD},
		{name: "PROCKEY", run: cmdProcKey, access: preLogin},
		{name: "FREESP", run: cmdFreeSp},
	}})
}

// now is the clock, replaceable in tests.
var now = time.Now

// END: no reply, the server closes.
func cmdEnd(*session, string) error { return errEnd }

// ECHO replies with the text after "ECHO " only (WIRE.md §P row 6).
func cmdEcho(s *session, args string) error { return s.conn.WriteFrameString(args) }

func cmdDate(s *session, _ string) error {
	return s.okText(strconv.FormatInt(now().Unix(), 10))
}

// UDATE and NDATE print the fraction as an unpadded integer count of µs or ns,
// as the reference does (WIRE.md §5.8).
func cmdUDate(s *session, _ string) error {
	t := now()
	return s.okText(fmt.Sprintf("%d.%d", t.Unix(), t.Nanosecond()/1000))
}

func cmdNDate(s *session, _ string) error {
	t := now()
	return s.okText(fmt.Sprintf("%d.%d", t.Unix(), t.Nanosecond()))
}

func cmdDateF(s *session, _ string) error { return s.okText(formatDate(now().Unix())) }

// formatDate prints "YYYY-MM-DD HH:MM:SS" in UTC; years beyond four digits are
// printed in full, as strftime does.
func formatDate(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
}

// Years a C struct tm (int tm_year, counted from 1900) can hold: gmtime fails
// outside them, and so does DTOF.
const (
	minTmYear = -(1 << 31) + 1900
	maxTmYear = (1<<31 - 1) + 1900
)

// DTOF: at most 21 characters are read and parsed as atol does (leading blanks,
// a sign, digits up to the first non-digit, so "abc" is 0).
func cmdDTOF(s *session, args string) error {
	if args == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	if len(args) > 21 {
		args = args[:21]
	}
	sec, ok := atol(args)
	if !ok {
		return s.fail(tfproto.CodeDateNotRepr)
	}
	// time.Unix is exact for every int64; check the year against gmtime's range.
	if y := time.Unix(sec, 0).UTC().Year(); y < minTmYear || y > maxTmYear {
		return s.fail(tfproto.CodeDateNotRepr)
	}
	return s.okText(formatDate(sec))
}

// atol parses like C's atol/strtol: it reports false when the value overflows
// int64 (strtol would clamp to a value gmtime cannot represent anyway).
func atol(s string) (int64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, true
	}
	v, err := strconv.ParseInt(s[i:j], 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// FTOD parses "YYYY-MM-DD HH:MM:SS" (fields may have fewer digits, as strptime
// allows; out-of-range fields are normalised, as mktime does) as UTC. Where the
// reference answers garbage with "OK" and a nonsense value, tfd answers
// FAILED 26: a date that does not parse is not representable.
func cmdFTOD(s *session, args string) error {
	if args == "" {
		return s.fail(tfproto.CodeMissingParam)
	}
	var y, mo, d, h, mi, sec int
	var rest string
	n, _ := fmt.Sscanf(args, "%d-%d-%d %d:%d:%d%s", &y, &mo, &d, &h, &mi, &sec, &rest)
	if n != 6 {
		return s.fail(tfproto.CodeDateNotRepr)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	return s.okText(strconv.FormatInt(t.Unix(), 10))
}

// PROCKEY: a key unique on the node, registered for the UDP checks until the
// session ends (see netcheck.go and udp.Registry for its form).
func cmdProcKey(s *session, _ string) error {
	if s.prockey == "" {
		key, err := s.srv.chk.keys.Register(&s.chk.state)
		if err != nil {
			s.log.Warn("prockey", "err", err)
			return s.fail(tfproto.CodeNoProcKey)
		}
		s.prockey = key
	}
	return s.okText(s.prockey)
}

// FREESP: f_bavail × f_bsize of the session root's filesystem, unsigned.
func cmdFreeSp(s *session, _ string) error {
	free, err := s.fs.FreeSpace()
	if err != nil {
		s.log.Warn("freesp", "err", err)
		free = ^uint64(0) // the reference prints (unsigned)-1 on failure
	}
	return s.okText(strconv.FormatUint(free, 10))
}
