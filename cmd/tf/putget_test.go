package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

// cancelAt is a progress meter that cancels a context once it has counted at
// least at bytes: an interruption in the middle of a transfer, like Ctrl-C.
type cancelAt struct {
	mu     sync.Mutex
	n, at  int64
	cancel context.CancelFunc
	done   []bool
}

func (c *cancelAt) Add(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += n
	if c.n >= c.at {
		c.cancel()
	}
}

func (c *cancelAt) Done(ok bool) { c.mu.Lock(); c.done = append(c.done, ok); c.mu.Unlock() }

// runInterrupted runs tf with a context that is cancelled once the transfer's
// meter has counted at bytes.
func runInterrupted(t *testing.T, srv *servertest.Server, at int64, args ...string) (int, string, string) {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "public.pem")
	os.WriteFile(pub, srv.PublicKeyPEM, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	meter := &cancelAt{at: at, cancel: cancel}
	var out, errb bytes.Buffer
	full := append([]string{"--addr", srv.Addr, "--pubkey", pub}, args...)
	code := runEnv(ctx, full, &out, &errb, func(string) (string, bool) { return "", false },
		func(*env, string, int64) progress { return meter })
	if len(meter.done) != 1 || meter.done[0] {
		t.Errorf("meter ended %v, want one unsuccessful end", meter.done)
	}
	return code, out.String(), errb.String()
}

func TestPutGet(t *testing.T) {
	srv := servertest.Start(t)
	dir := t.TempDir()
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	local := filepath.Join(dir, "big.bin")
	os.WriteFile(local, data, 0o644)
	small := filepath.Join(dir, "small.txt")
	os.WriteFile(small, []byte("small"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	os.Mkdir(filepath.Join(srv.Root, "up"), 0o755)
	os.WriteFile(filepath.Join(srv.Root, "old.txt"), []byte("a much longer old content"), 0o644)

	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"put", small, "up/"}, exitOK, "", ""},
		{[]string{"put", empty, "empty"}, exitOK, "", ""},
		{[]string{"get", "empty", "-"}, exitOK, "", ""},
		{[]string{"put", small, "old.txt"}, exitOK, "", ""}, // replaced, no old tail
		{[]string{"put", small, "up"}, exitError, "", "remote up is a directory"},
		{[]string{"put", filepath.Join(dir, "missing"), "x"}, exitError, "", "no such file"},
		{[]string{"put", dir, "x"}, exitError, "", "not a regular file"},
		{[]string{"put", small, "nodir/x"}, exitFailed, "", "FAILED 34 "},
		{[]string{"put"}, exitUsage, "", "put needs"},
		{[]string{"get", "old.txt", "-"}, exitOK, "small", ""},
		{[]string{"get", "missing", filepath.Join(dir, "m")}, exitFailed, "", "FAILED 9 "},
		{[]string{"get", "up", filepath.Join(dir, "m")}, exitError, "", "is a directory"},
		{[]string{"get", "--resume", "old.txt", "-"}, exitUsage, "", "needs a LOCAL file"},
		{[]string{"get", "up/small.txt", dir + "/"}, exitOK, "", ""},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(srv.Root, "old.txt")); string(b) != "small" {
		t.Errorf("put over a longer file: %q", b)
	}
	if st, err := os.Stat(filepath.Join(srv.Root, "empty")); err != nil || st.Size() != 0 {
		t.Errorf("put of an empty file: %v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "small.txt")); string(b) != "small" {
		t.Errorf("get into a directory: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "m")); err == nil {
		t.Error("a failed get left a local file")
	}

	// An interrupted put keeps what was sent; --resume completes it.
	code, _, errs := runInterrupted(t, srv, 1<<20, "put", local, "big.bin")
	if code != exitError || !strings.Contains(errs, "interrupted: put stopped after") || !strings.Contains(errs, "tf put --resume") {
		t.Fatalf("interrupted put: %d %q", code, errs)
	}
	st, err := os.Stat(filepath.Join(srv.Root, "big.bin"))
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(data)) {
		t.Fatalf("after the interrupted put the remote file is %v %v", st, err)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(srv.Root, "big.bin")), data[:st.Size()]) {
		t.Fatal("the interrupted put's prefix differs")
	}
	if code, _, errs := runTF(t, srv, "put", "--resume", local, "big.bin"); code != exitOK {
		t.Fatalf("put --resume: %d %q", code, errs)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(srv.Root, "big.bin")), data) {
		t.Fatal("put --resume did not complete the file")
	}
	// Resuming a complete file sends nothing and succeeds; a remote larger
	// than the local file is refused.
	if code, _, errs := runTF(t, srv, "put", "--resume", local, "big.bin"); code != exitOK {
		t.Fatalf("put --resume of a complete file: %d %q", code, errs)
	}
	if code, _, errs := runTF(t, srv, "put", "--resume", small, "big.bin"); code != exitError || !strings.Contains(errs, "larger") {
		t.Fatalf("put --resume onto a larger file: %d %q", code, errs)
	}

	// An interrupted get keeps the local prefix; --resume completes it.
	back := filepath.Join(dir, "back.bin")
	code, _, errs = runInterrupted(t, srv, 1<<20, "get", "big.bin", back)
	if code != exitError || !strings.Contains(errs, "tf get --resume") {
		t.Fatalf("interrupted get: %d %q", code, errs)
	}
	part := mustRead(t, back)
	if len(part) == 0 || len(part) >= len(data) || !bytes.Equal(part, data[:len(part)]) {
		t.Fatalf("after the interrupted get the local file has %d bytes", len(part))
	}
	if code, _, errs := runTF(t, srv, "get", "--resume", "big.bin", back); code != exitOK {
		t.Fatalf("get --resume: %d %q", code, errs)
	}
	if !bytes.Equal(mustRead(t, back), data) {
		t.Fatal("get --resume did not complete the file")
	}
	if code, _, errs := runTF(t, srv, "get", "--resume", "old.txt", back); code != exitError || !strings.Contains(errs, "larger") {
		t.Fatalf("get --resume onto a larger file: %d %q", code, errs)
	}
	// Without --resume a get replaces the local file.
	if code, _, _ := runTF(t, srv, "get", "old.txt", back); code != exitOK || string(mustRead(t, back)) != "small" {
		t.Fatalf("get over a longer local file: %d %q", code, mustRead(t, back))
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
