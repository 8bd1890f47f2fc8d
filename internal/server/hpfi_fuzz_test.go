package server

import (
	"encoding/binary"
	"testing"
)

// FuzzParseHPFile checks the struct parser on any body: it never panics, the
// path and struct always account for the whole argument string, and the
// fields read back big-endian.
func FuzzParseHPFile(f *testing.F) {
	st := binary.BigEndian.AppendUint64(nil, 5)
	st = binary.BigEndian.AppendUint64(st, 1<<20)
	f.Add("dir/file "+string(st), false)
	f.Add("a b c "+string(binary.BigEndian.AppendUint64(st, 3)), true)
	f.Add("", false)
	f.Add(string(st), false)
	f.Add(" "+string(st), true)
	f.Fuzz(func(t *testing.T, args string, can bool) {
		path, hf, ok := parseHPFile(args, can)
		size := hpfileSize
		if can {
			size = hpfileCanSize
		}
		if !ok {
			if len(args) >= size+1 {
				t.Fatalf("rejected a %d-byte argument string", len(args))
			}
			return
		}
		if len(path)+1+size != len(args) || args[:len(path)] != path {
			t.Fatalf("path %q does not prefix %q", path, args)
		}
		tail := []byte(args[len(args)-size:])
		if hf.offset != binary.BigEndian.Uint64(tail) || hf.bufsz != int64(binary.BigEndian.Uint64(tail[8:])) {
			t.Fatal("offset or bufsz misread")
		}
		if can && hf.canpt != binary.BigEndian.Uint64(tail[16:]) {
			t.Fatal("canpt misread")
		}
	})
}
