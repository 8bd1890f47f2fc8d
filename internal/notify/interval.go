// Package notify is the machinery of TFProtocol's notification mode (ADDNTFY,
// STARTNTFY; WIRE.md §5.41–5.42): watch-list entries and their tokens, the
// sweep that finds the next notification in a directory, the client's
// interval, the server-wide Hub (one inotify instance through fsnotify, shared
// by all sessions, one watch per directory) and the per-session Watcher that
// wakes the sweep on a change and tells when a directory must be polled instead.
//
// Every path-based operation (open, stat, unlink, adding an inotify watch) is a
// method the session calls on its own goroutine, through the session's os.Root;
// the only goroutine started here (the hub's) forwards wake-ups.
package notify

import (
	"math"
	"strconv"
	"time"
)

// Interval limits.
const (
	// DefaultInterval is used for an empty, zero, negative or unparsable
	// interval (the reference's default).
	DefaultInterval = 25 * time.Millisecond
	// MinInterval is the guard against a tiny interval: sweeps never run
	// closer together than this, so "1e-9" cannot spin a core.
	MinInterval = 10 * time.Millisecond
	// MaxInterval caps a huge interval (and keeps the Duration finite).
	MaxInterval = 24 * time.Hour
	// maxIntervalText is how much of STARTNTFY's argument the reference reads.
	maxIntervalText = 17
)

// ParseInterval reads STARTNTFY's interval in seconds the way C's strtod reads
// its first 17 characters (leading blanks, a sign, decimal or hexadecimal
// digits, a fraction, an exponent; "inf" and "nan"; trailing junk ignored) and
// returns the sweep interval: DefaultInterval when the text holds no positive
// number, otherwise the value clamped to [MinInterval, MaxInterval].
func ParseInterval(s string) time.Duration {
	return Clamp(ParseCDouble(s))
}

// Clamp maps an interval in seconds to the sweep interval ParseInterval
// describes.
func Clamp(sec float64) time.Duration {
	if math.IsNaN(sec) || sec <= 0 {
		return DefaultInterval
	}
	if sec >= MaxInterval.Seconds() {
		return MaxInterval
	}
	d := time.Duration(sec * float64(time.Second))
	return max(d, MinInterval)
}

// ParseCDouble returns the value of the longest prefix of s[:17] that strtod
// would accept, or 0 when there is none.
func ParseCDouble(s string) float64 {
	if len(s) > maxIntervalText {
		s = s[:maxIntervalText]
	}
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	neg := i > start && s[start] == '-'
	rest := s[i:]
	if prefixFold(rest, "infinity") >= 3 {
		if neg {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if prefixFold(rest, "nan") == 3 {
		return math.NaN()
	}
	var end int
	if len(rest) >= 2 && rest[0] == '0' && (rest[1] == 'x' || rest[1] == 'X') {
		end = scanHex(rest)
		if end == 0 {
			return 0 // "0x" with no digits: strtod takes just the "0"
		}
		num := rest[:end]
		if !containsFold(num, 'p') {
			num += "p0" // Go needs the exponent that C allows to be absent
		}
		v, err := strconv.ParseFloat(s[start:i]+num, 64)
		if err != nil && !isRange(err) {
			return 0
		}
		return v
	}
	end = scanDecimal(rest)
	if end == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(s[start:i]+rest[:end], 64)
	if err != nil && !isRange(err) {
		return 0
	}
	return v
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// prefixFold returns how many leading bytes of s match word, ignoring case.
func prefixFold(s, word string) int {
	n := 0
	for n < len(s) && n < len(word) && lower(s[n]) == word[n] {
		n++
	}
	return n
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func containsFold(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if lower(s[i]) == c {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (lower(c) >= 'a' && lower(c) <= 'f') }

// scanDecimal returns the length of the longest decimal floating-point prefix
// of s (digits, optional fraction, optional exponent with digits), 0 if none.
func scanDecimal(s string) int { return scanFloat(s, 0, isDigit, 'e') }

// scanHex is scanDecimal for "0x" hexadecimal floats (binary exponent "p").
func scanHex(s string) int { return scanFloat(s, 2, isHex, 'p') }

// scanFloat scans mantissa digits (accepted by digit) from s[i:], an optional
// fraction, and an optional exponent introduced by exp (either case) with
// decimal digits; it returns the end of the number, 0 if no mantissa digit.
func scanFloat(s string, i int, digit func(byte) bool, exp byte) int {
	digits := 0
	for i < len(s) && digit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && digit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && lower(s[i]) == exp {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	return i
}
