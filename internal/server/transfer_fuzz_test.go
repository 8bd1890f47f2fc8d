package server

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// FuzzScanLines checks FSIZELS's line splitter against a plain split: every
// "\n"-terminated line and a final unterminated one, lines over the limit
// flagged (and cut to it), whatever the reader's buffer size.
func FuzzScanLines(f *testing.F) {
	for _, s := range []string{"", "\n", "a", "a\nb", "a\nb\n", "\n\n\nx", strings.Repeat("y", 40) + "\nz", "a\r\nb\r\n"} {
		f.Add([]byte(s), uint8(16), uint8(8))
	}
	f.Fuzz(func(t *testing.T, in []byte, bufSize, max uint8) {
		limit := int(max)
		type line struct {
			s    string
			long bool
		}
		var want []line
		parts := strings.Split(string(in), "\n")
		if parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		for _, p := range parts {
			if len(p) > limit {
				want = append(want, line{"", true})
			} else {
				want = append(want, line{p, false})
			}
		}
		var got []line
		r := bufio.NewReaderSize(bytes.NewReader(in), int(bufSize)) // at least 16
		err := scanLines(r, limit, func(b []byte, long bool) error {
			if long {
				b = nil
			}
			got = append(got, line{string(b), long})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("scanLines(%q, %d) = %v, want %v", in, limit, got, want)
		}
	})
}

// FuzzParseKeepalive: whatever the line, the parser never panics, and what it
// accepts prints back to an equivalent line.
func FuzzParseKeepalive(f *testing.F) {
	for _, s := range []string{"1 10 | 5 | 3", "0 0 | 0 | 0", "1 10 5 3", "", "1 -1 | +2 | 3", "1 1 | 1 | 1 | 1", "\x00\x00\x00\x01 \x00 | 1 | 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := parseKeepalive(s)
		if !ok {
			return
		}
		on := 0
		if k.on {
			on = 1
		}
		again, ok := parseKeepalive(fmt.Sprintf("%d %d | %d | %d", on, k.idle, k.intvl, k.cnt))
		if !ok || again != k {
			t.Fatalf("%q parsed as %+v, which does not print back", s, k)
		}
		if ut, ok := k.userTimeout(); ok && (ut < 0 || ut > 1<<31-1) {
			t.Fatalf("user timeout %d", ut)
		}
	})
}

// FuzzNigmaKeyLen: only plain decimal lengths of 8..214 that are multiples of
// 4 are accepted.
func FuzzNigmaKeyLen(f *testing.F) {
	for _, s := range []string{"8", "214", "212", "7", "+8", " 8", "0x10", "", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := nigmaKeyLen(s)
		if !ok {
			return
		}
		if n < 8 || n > 214 || n%4 != 0 || strings.Trim(s, "0123456789") != "" {
			t.Fatalf("accepted %q as %d", s, n)
		}
	})
}
