package tlb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestParseLines(t *testing.T) {
	long := "4 " + strings.Repeat("1", MaxTupleLen)
	tests := []struct {
		name, in, port string
		want           []string
	}{
		{"spec lines verbatim", "4 10.0.0.1;10346\n6 ::1;10346\n", "", []string{"4 10.0.0.1;10346", "6 ::1;10346"}},
		{"no final newline", "4 1.1.1.1;1234", "", []string{"4 1.1.1.1;1234"}},
		{"crlf", "4 1.1.1.1;1\r\n6 ::1;2\r\n", "", []string{"4 1.1.1.1;1", "6 ::1;2"}},
		{"blank and comment lines skipped", "\n  \n# pool\n4 a;1\n\t\n", "", []string{"4 a;1"}},
		{"other syntax verbatim", "anything goes here \n 4  x ; 9\n", "", []string{"anything goes here ", " 4  x ; 9"}},
		{"readme ipv4 completed with port", "ipv4: 127.0.0.1\n", "10345", []string{"4 127.0.0.1;10345"}},
		{"readme ipv6 completed with port", "ipv6: ::1\n", "10345", []string{"6 ::1;10345"}},
		{"readme line keeps its own port", "ipv4: 10.1.1.1;99\nIPv6:  fe80::1 ; 7 \n", "10345", []string{"4 10.1.1.1;99", "6 fe80::1;7"}},
		{"readme line without known port", "ipv4: 127.0.0.1\n", "", []string{"4 127.0.0.1"}},
		{"readme prefix without host verbatim", "ipv4:\n", "1", []string{"ipv4:"}},
		{"overlong line skipped", long + "\n4 ok;1\n", "", []string{"4 ok;1"}},
		{"empty", "", "", nil},
		{"only blanks", "\n\n\r\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseLines([]byte(tt.in), tt.port)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
}

func writePool(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tlb")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func next(t *testing.T, p Picker) string {
	t.Helper()
	s, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFilePoolRotationPerPicker(t *testing.T) {
	path := writePool(t, "4 10.0.0.1;1\n4 10.0.0.2;2\n6 ::3;3\n")
	p := NewFilePool(path, "")
	if n, err := p.Reload(); err != nil || n != 3 {
		t.Fatalf("Reload = %d, %v", n, err)
	}
	a, b := p.NewPicker(), p.NewPicker()
	want := []string{"4 10.0.0.1;1", "4 10.0.0.2;2", "6 ::3;3", "4 10.0.0.1;1", "4 10.0.0.2;2"}
	for i, w := range want {
		if got := next(t, a); got != w {
			t.Fatalf("picker a call %d: %q want %q", i, got, w)
		}
	}
	// A second picker starts at the first line whatever the first one did.
	if got := next(t, b); got != want[0] {
		t.Fatalf("picker b: %q want %q", got, want[0])
	}
}

func TestFilePoolMissingAndEmpty(t *testing.T) {
	missing := NewFilePool(filepath.Join(t.TempDir(), "nope"), "")
	if _, err := missing.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload of a missing file: %v", err)
	}
	if _, err := missing.NewPicker().Next(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("missing file: %v", err)
	}
	empty := NewFilePool(writePool(t, "\n# nothing\n"), "")
	if n, err := empty.Reload(); err != nil || n != 0 {
		t.Fatalf("Reload = %d, %v", n, err)
	}
	if _, err := empty.NewPicker().Next(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty file: %v", err)
	}
	// Never loaded: empty.
	if _, err := NewFilePool("x", "").NewPicker().Next(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("unloaded pool: %v", err)
	}
}

func TestFilePoolReload(t *testing.T) {
	path := writePool(t, "4 a;1\n4 b;2\n")
	p := NewFilePool(path, "")
	p.Reload()
	pk := p.NewPicker()
	if got := next(t, pk); got != "4 a;1" {
		t.Fatal(got)
	}
	if err := os.WriteFile(path, []byte("6 x;1\n6 y;2\n6 z;3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Reload(); err != nil || n != 3 {
		t.Fatalf("Reload = %d, %v", n, err)
	}
	// The picker keeps its position (second call → second tuple) over the
	// new contents.
	if got := next(t, pk); got != "6 y;2" {
		t.Fatalf("after reload: %q", got)
	}
	if !reflect.DeepEqual(p.Tuples(), []string{"6 x;1", "6 y;2", "6 z;3"}) {
		t.Fatalf("Tuples = %q", p.Tuples())
	}
	os.Remove(path)
	if _, err := p.Reload(); err == nil {
		t.Fatal("Reload of a removed file succeeded")
	}
	if _, err := pk.Next(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after the file went away: %v", err)
	}
}

// One picker shared by goroutines (a UDP source served concurrently) hands
// out every tuple equally often.
func TestFilePoolConcurrentPicker(t *testing.T) {
	p := NewFilePool(writePool(t, "4 a;1\n4 b;2\n4 c;3\n4 d;4\n"), "")
	p.Reload()
	pk := p.NewPicker()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				s, err := pk.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[s]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(counts) != 4 {
		t.Fatalf("counts %v", counts)
	}
	for s, n := range counts {
		if n != 200 {
			t.Fatalf("%s handed out %d times, want 200 (%v)", s, n, counts)
		}
	}
}

func FuzzParseLines(f *testing.F) {
	for _, s := range []string{"4 10.0.0.1;10346\n6 ::1;10346\n", "ipv4: 1.2.3.4\nipv6: ::1;5\n", "\r\n#x\n", ""} {
		f.Add([]byte(s), "10345")
	}
	f.Fuzz(func(t *testing.T, data []byte, port string) {
		for _, l := range ParseLines(data, port) {
			if strings.ContainsAny(l, "\n") || strings.TrimSpace(l) == "" || strings.HasSuffix(l, "\r") {
				t.Fatalf("bad tuple %q", l)
			}
			if utf8.Valid(data) && utf8.ValidString(port) && !utf8.ValidString(l) {
				t.Fatalf("tuple %q not valid UTF-8", l)
			}
		}
	})
}
