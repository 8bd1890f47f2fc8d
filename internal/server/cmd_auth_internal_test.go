package server

import (
	"io/fs"
	"strconv"
	"testing"
)

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"755", "0755", "4755", "7777", "0", "", "8", "abc", "00755", "-1", "+7", "0o7", "1_0", " 7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseMode(s)
		n, err := strconv.ParseUint(s, 8, 32)
		valid := err == nil && len(s) >= 1 && len(s) <= 4 && s[0] != '+'
		if ok != valid {
			t.Fatalf("parseMode(%q) ok=%v, want %v", s, ok, valid)
		}
		if !ok {
			return
		}
		back := uint64(m.Perm())
		for bit, flag := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
			if m&flag != 0 {
				back |= bit
			}
		}
		if back != n || m&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			t.Fatalf("parseMode(%q) = %v, want %o", s, m, n)
		}
	})
}
