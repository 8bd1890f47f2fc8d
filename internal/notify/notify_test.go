package notify

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", DefaultInterval},
		{"0", DefaultInterval},
		{"0.0", DefaultInterval},
		{"-1", DefaultInterval},
		{"nan", DefaultInterval},
		{"garbage", DefaultInterval},
		{".", DefaultInterval},
		{"e5", DefaultInterval},
		{"0.5", 500 * time.Millisecond},
		{"3.3", 3300 * time.Millisecond},
		{"  2", 2 * time.Second},
		{"+1.25", 1250 * time.Millisecond},
		{"1e-1", 100 * time.Millisecond},
		{"2.5E+1", 25 * time.Second},
		{"5e-2xyz", 50 * time.Millisecond},
		{"1e", time.Second},  // exponent without digits: strtod stops before it
		{"1e+", time.Second}, //
		{".25", 250 * time.Millisecond},
		{"4.", 4 * time.Second},
		{"0x1p-2", 250 * time.Millisecond},
		{"0x.8", 500 * time.Millisecond},
		{"0x", DefaultInterval},
		{"1e-3", MinInterval},   // guarded
		{"1.0e-9", MinInterval}, //
		{"0.00000001", MinInterval},
		{"inf", MaxInterval},
		{"INFINITY", MaxInterval},
		{"1e300", MaxInterval},
		{"-inf", DefaultInterval},
		// Only the first 17 characters count.
		{"0.000000000000001" + "5", MinInterval},
		{"00000000000000001" + "0", time.Second},
		{"1.0000000000000000009", time.Second},
	} {
		if got := ParseInterval(tc.in); got != tc.want {
			t.Errorf("ParseInterval(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCDoubleMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0.5", "1e-3", "3.000000001", "12345", "7.25e1", "1E2", "0.1"} {
		want, _ := strconv.ParseFloat(s, 64)
		if got := ParseCDouble(s); got != want {
			t.Errorf("ParseCDouble(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzParseInterval: any text gives an interval in range, never a panic; a
// plain decimal number parses as strconv does.
func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"", "0", "0.5", "1e-3", "1.0e-9", "0x1p-4", "inf", "nan", "-2", " 3.3 ", "9e999", "0x", "1e+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseInterval(s)
		if d != DefaultInterval && (d < MinInterval || d > MaxInterval) {
			t.Fatalf("ParseInterval(%q) = %v out of range", s, d)
		}
		v := ParseCDouble(s)
		if len(s) <= maxIntervalText && scanDecimal(s) == len(s) && len(s) > 0 {
			want, err := strconv.ParseFloat(s, 64)
			if err == nil && v != want && !(math.IsNaN(v) && math.IsNaN(want)) {
				t.Fatalf("ParseCDouble(%q) = %v, strconv says %v", s, v, want)
			}
		}
	})
}

func TestCheckToken(t *testing.T) {
	for tok, ok := range map[string]bool{
		"": true, "evt": true, "1234567": true, ".hidden": true, "a b": true,
		"12345678": false, ".": false, "..": false, "a/b": false, "/": false, "a\x00": false,
	} {
		if err := CheckToken(tok); (err == nil) != ok {
			t.Errorf("CheckToken(%q) = %v", tok, err)
		}
	}
}

func newRoot(t *testing.T) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

func write(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEntryFindAckUnlink(t *testing.T) {
	dir, root := newRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "d"), "ev1", "ev2", "x")
	os.Mkdir(filepath.Join(dir, "d", "ev_dir"), 0o755)
	os.Symlink("ev1", filepath.Join(dir, "d", "ev_link"))
	e := &Entry{Token: "ev", Dir: "d"}
	var got []string
	for {
		name, id, ok := e.Find(root)
		if !ok {
			break
		}
		got = append(got, name)
		e.Ack(name, id)
		if len(got) > 5 {
			t.Fatalf("acknowledged files come back: %v", got)
		}
	}
	sort.Strings(got)
	if len(got) != 2 || got[0] != "ev1" || got[1] != "ev2" {
		t.Fatalf("found %v", got)
	}
	if e.Acked() != 2 {
		t.Fatalf("acked %d", e.Acked())
	}
	// A removed file is forgotten after a full pass; a modified one is new.
	os.Remove(filepath.Join(dir, "d", "ev2"))
	if _, _, ok := e.Find(root); ok {
		t.Fatal("found something")
	}
	if e.Acked() != 1 {
		t.Fatalf("acked %d after ev2 went", e.Acked())
	}
	if err := os.Chmod(filepath.Join(dir, "d", "ev1"), 0o600); err != nil {
		t.Fatal(err)
	}
	name, _, ok := e.Find(root)
	if !ok || name != "ev1" {
		t.Fatalf("modified file not found again: %q %v", name, ok)
	}
	if err := e.Unlink(root, "ev1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d", "ev1")); !os.IsNotExist(err) {
		t.Fatal("not unlinked")
	}
	// Unlink never removes directories and never leaves the directory.
	for _, bad := range []string{"ev_dir", "../d", "", ".", "..", "a/b"} {
		if err := e.Unlink(root, bad); err == nil {
			t.Errorf("Unlink(%q) succeeded", bad)
		}
	}
	// A missing directory finds nothing.
	gone := &Entry{Dir: "missing"}
	if _, _, ok := gone.Find(root); ok {
		t.Fatal("found in a missing directory")
	}
}

func TestWatcher(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run("poll="+strconv.FormatBool(poll), func(t *testing.T) {
			ForcePolling(poll)
			defer ForcePolling(false)
			hub := NewHub(nil)
			defer hub.Close()
			dir, root := newRoot(t)
			os.Mkdir(filepath.Join(dir, "a"), 0o755)
			os.Mkdir(filepath.Join(dir, "b"), 0o755)
			entries := []*Entry{{Dir: "a"}, {Dir: "b"}, {Token: "x", Dir: "a"}}
			w := NewWatcher(hub, root, entries)
			defer w.Close()
			w.Refresh()
			if w.Polling() != poll {
				t.Fatalf("Polling() = %v", w.Polling())
			}
			if !poll {
				if hub.Watches() != 2 {
					t.Fatalf("%d watches for 2 directories", hub.Watches())
				}
				write(t, filepath.Join(dir, "b"), "f")
				select {
				case <-w.C():
				case <-time.After(10 * time.Second):
					t.Fatal("no wake-up for a new file")
				}
			}
			// A directory that goes away is polled; when it returns it is
			// watched again.
			os.Remove(filepath.Join(dir, "a"))
			w.Refresh()
			if !w.Polling() {
				t.Fatal("a missing directory is not polled")
			}
			os.Mkdir(filepath.Join(dir, "a"), 0o755)
			w.Refresh()
			if w.Polling() != poll {
				t.Fatalf("after return Polling() = %v", w.Polling())
			}
		})
	}
}

func TestHubSharedBetweenSessions(t *testing.T) {
	hub := NewHub(nil)
	defer hub.Close()
	dir, root := newRoot(t)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	w1 := NewWatcher(hub, root, []*Entry{{Dir: "d"}})
	w2 := NewWatcher(hub, root, []*Entry{{Dir: "/d"}, {Dir: "d"}})
	w1.Refresh()
	w2.Refresh()
	if hub.Watches() != 1 {
		t.Fatalf("%d watches for one directory", hub.Watches())
	}
	write(t, filepath.Join(dir, "d"), "f")
	for i, w := range []*Watcher{w1, w2} {
		select {
		case <-w.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d not woken", i+1)
		}
	}
	w1.Close()
	if hub.Watches() != 1 {
		t.Fatal("watch dropped while another session uses it")
	}
	os.Remove(filepath.Join(dir, "d", "f"))
	select {
	case <-w2.C():
	case <-time.After(10 * time.Second):
		t.Fatal("remaining watcher not woken")
	}
	w2.Close()
	if hub.Watches() != 0 {
		t.Fatalf("%d watches left", hub.Watches())
	}
	// Without a hub everything is polled.
	w3 := NewWatcher(nil, root, []*Entry{{Dir: "d"}})
	w3.Refresh()
	if !w3.Polling() {
		t.Fatal("no hub but not polling")
	}
	w3.Close()
}

func TestWatcherFileEntryIsInert(t *testing.T) {
	dir, root := newRoot(t)
	write(t, dir, "plain")
	hub := NewHub(nil)
	defer hub.Close()
	w := NewWatcher(hub, root, []*Entry{{Dir: "plain"}})
	defer w.Close()
	w.Refresh()
	if w.Polling() {
		t.Fatal("a file entry makes the session poll")
	}
	if _, _, ok := (&Entry{Dir: "plain"}).Find(root); ok {
		t.Fatal("a file entry found a notification")
	}
	// It becomes a directory: watched (or polled) from the next refresh.
	os.Remove(filepath.Join(dir, "plain"))
	w.Refresh()
	if !w.Polling() {
		t.Fatal("a missing entry is not polled")
	}
}
