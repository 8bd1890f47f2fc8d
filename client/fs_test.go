package client

import (
	"bytes"
	"testing"
)

func TestParseListing(t *testing.T) {
	got, err := ParseListing([]byte("D: d/\nF: d/f x\nU: link\n"))
	want := []Entry{{EntryDir, "d"}, {EntryFile, "d/f x"}, {EntryOther, "link"}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseListing = %+v, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"F: x", "X: y\n", "F:y\n", "\n", "F\n", "D: d\n"} {
		if _, err := ParseListing([]byte(bad)); err == nil {
			t.Errorf("ParseListing(%q) accepted", bad)
		}
	}
	if got, err := ParseListing(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty listing: %v %v", got, err)
	}
}

// FuzzParseListing: the parser never panics, and whatever it accepts prints
// back to the same bytes.
func FuzzParseListing(f *testing.F) {
	for _, s := range []string{"", "D: d/\nF: d/f\nU: l\n", "F: x", "D: /\n", "F: \n", "Q: x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ents, err := ParseListing(raw)
		if err != nil {
			return
		}
		var b bytes.Buffer
		for _, e := range ents {
			b.WriteByte(byte(e.Type))
			b.WriteString(": " + e.Name)
			if e.Type == EntryDir {
				b.WriteByte('/')
			}
			b.WriteByte('\n')
		}
		if !bytes.Equal(b.Bytes(), raw) {
			t.Fatalf("round trip %q -> %q", raw, b.Bytes())
		}
	})
}
