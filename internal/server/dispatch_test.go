package server

import "testing"

func TestParseCommand(t *testing.T) {
	tests := []struct{ in, name, args string }{
		{"LS ", "LS", ""},
		{"LS", "LS", ""},
		{"mkdir a b", "MKDIR", "a b"},
		{"ECHO  x", "ECHO", " x"},
		{"COPY a | b", "COPY", "a | b"},
		{"", "", ""},
		{" x", "", "x"},
		{"Xs_Gateway", "XS_GATEWAY", ""},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE y", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE", "y"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF y", "", "y"},
		{"é x", "é", "x"},
	}
	for _, tt := range tests {
		name, args := parseCommand([]byte(tt.in))
		if name != tt.name || args != tt.args {
			t.Errorf("%q: got %q %q want %q %q", tt.in, name, args, tt.name, tt.args)
		}
	}
}

func TestEveryCommandHasUpperCaseName(t *testing.T) {
	for name, c := range commandTable {
		if name != upperASCII(c.name) || c.run == nil || c.family == "" {
			t.Errorf("bad table entry %q: %+v", name, c)
		}
	}
}

// FuzzParseCommand: the parser never panics, the name is upper-case ASCII-folded
// and at most 31 bytes, and name+" "+args reconstructs the body when it has a
// space.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"LS ", "ECHO hi", "COPY a | b", "", "PUT x \x00\x00\x00\x00\x00\x00\x00\x01", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		name, args := parseCommand(b)
		if len(name) > maxNameLen {
			t.Fatalf("name of %d bytes", len(name))
		}
		if upperASCII(name) != name {
			t.Fatalf("name %q not upper-cased", name)
		}
		if len(args) > len(b) {
			t.Fatal("args longer than the body")
		}
	})
}
