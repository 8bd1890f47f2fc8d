package server_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// maxPayload is the largest payload of one "CONT " message.
const maxPayload = tfproto.MaxFrame - 5

func TestFSList(t *testing.T) {
	srv := servertest.Start(t)
	fsFixture(t, srv)
	for name, data := range map[string]string{"x.sd": "a file named *.sd is listed", ".securefs_metadata": ""} {
		os.WriteFile(filepath.Join(srv.Root, name), []byte(data), 0o644)
	}
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	cases := []struct {
		cmd  string
		path string
		want string
	}{
		{"LS", "", "D: d/\nU: dangling\nD: e/\nU: evil\nU: evild\nU: evilf\nF: f.txt\nU: in\nD: ld/\nU: p\nD: x/\nF: x.sd\nD: xsub/\n"},
		{"LS", "/", "D: d/\nU: dangling\nD: e/\nU: evil\nU: evild\nU: evilf\nF: f.txt\nU: in\nD: ld/\nU: p\nD: x/\nF: x.sd\nD: xsub/\n"},
		{"LS", "d", "F: f\nD: sub/\n"},
		{"LS", "in", "F: f\nD: sub/\n"},
		{"LS", "s.sd", "D: in/\nD: sub/\nF: tok\n"},
		{"LS", "d/in.sd", "F: y\n"},
		{"LS", "e", ""},
		{"LSR", "d", "F: f\nD: sub/\nF: sub/g\n"},
		{"LSR", "s.sd", "D: in/\nF: in/x\nD: sub/\nF: sub/g\nF: tok\n"},
		{"LSR", "e", ""},
		{"LSR", "", "D: d/\nF: d/f\nD: d/sub/\nF: d/sub/g\nU: dangling\nD: e/\nU: evil\nU: evild\nU: evilf\nF: f.txt\nU: in\n" +
			"D: ld/\nD: ld/free/\nF: ld/free/h\nF: ld/inner\nF: ld/lk\nD: ld/sub/\nF: ld/sub/g\nF: ld/sub/lk\nU: p\n" +
			"D: x/\nD: x/sub/\nF: x/sub/g\nF: x.sd\nD: xsub/\n"},
	}
	for _, tc := range cases {
		raw, err := c.ListRaw(ctx, tc.path, tc.cmd == "LSR")
		if err != nil || string(raw) != tc.want {
			t.Errorf("%s %q =\n%s(%v)\nwant\n%s", tc.cmd, tc.path, raw, err, tc.want)
		}
	}
	ents, err := c.List(ctx, "d")
	if err != nil || len(ents) != 2 || ents[0] != (client.Entry{Type: client.EntryFile, Name: "f"}) || ents[1] != (client.Entry{Type: client.EntryDir, Name: "sub"}) {
		t.Fatalf("List d = %+v, %v", ents, err)
	}
	ents, err = c.ListRecursive(ctx, "d")
	if err != nil || len(ents) != 3 || ents[2] != (client.Entry{Type: client.EntryFile, Name: "sub/g"}) {
		t.Fatalf("ListRecursive d = %+v, %v", ents, err)
	}
	if _, err := c.List(ctx, "nope"); codeOf(t, err) != tfproto.CodeDirNotExist {
		t.Fatalf("List nope: %v", err)
	}
	// Nothing was written into the tree to make the listings.
	after, _ := os.ReadDir(srv.Root)
	if len(after) != 16 {
		t.Fatalf("root has %d entries after listing, want 16", len(after))
	}
}

// TestFSListLarge lists a directory whose listing needs several CONT messages.
func TestFSListLarge(t *testing.T) {
	srv := servertest.Start(t)
	dir := filepath.Join(srv.Root, "big")
	os.Mkdir(dir, 0o755)
	const n = 2200
	var want strings.Builder
	for i := range n {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 245))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want.WriteString("F: " + name + "\n")
	}
	if want.Len() <= maxPayload {
		t.Fatalf("listing of %d bytes fits one message", want.Len())
	}
	c := srv.Dial(t)
	raw, err := c.ListRaw(servertest.Context(t), "big", false)
	if err != nil || string(raw) != want.String() {
		t.Fatalf("LS big: %d bytes, want %d: %v", len(raw), want.Len(), err)
	}
	ents, err := c.ListRecursive(servertest.Context(t), "")
	if err != nil || len(ents) != n+1 || ents[0].Name != "big" || ents[n].Name != "big/2199-"+strings.Repeat("n", 245) {
		t.Fatalf("LSR: %d entries, %v", len(ents), err)
	}
}

// rawFlow sends line on a raw connection and answers every CONT message
// with CONT (with BREAK after stopAfter payloads, if stopAfter > 0), returning the payloads and the final
// status line.
func rawFlow(t *testing.T, conn *tfproto.Conn, line string, stopAfter int) (payloads [][]byte, final string) {
	t.Helper()
	if err := conn.WriteFrameString(line); err != nil {
		t.Fatal(err)
	}
	for {
		body, err := conn.ReadFrame(0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(body, []byte("CONT ")) {
			return payloads, string(body)
		}
		if len(body) > tfproto.MaxFrame {
			t.Fatalf("CONT message of %d bytes", len(body))
		}
		payloads = append(payloads, append([]byte(nil), body[5:]...))
		next := "CONT"
		if len(payloads) == stopAfter {
			next = "BREAK"
		}
		if err := conn.WriteFrameString(next); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFSStreamFlow checks the RCVFILE flow message by message: chunk sizes,
// BREAK, the delete flag and the framed UNKNOWN for stray CONT/BREAK after the
// end (WIRE.md §5.12, §P row 20).
func TestFSStreamFlow(t *testing.T) {
	srv := servertest.Start(t)
	fsFixture(t, srv)
	data := make([]byte, 2*maxPayload+1)
	for i := range data {
		data[i] = byte(i * 7)
	}
	big := filepath.Join(srv.Root, "big")
	os.WriteFile(big, data, 0o644)
	conn := srv.DialHandshake(t)

	chunks, final := rawFlow(t, conn, "RCVFILE 0 big", 0)
	if final != "OK" || len(chunks) != 3 || len(chunks[0]) != maxPayload || len(chunks[1]) != maxPayload || len(chunks[2]) != 1 ||
		!bytes.Equal(bytes.Join(chunks, nil), data) {
		t.Fatalf("RCVFILE: %d chunks, final %q", len(chunks), final)
	}
	// The official clients send one more CONT after the end; so may a confused one.
	for _, stray := range []string{"CONT", "BREAK", "CONT more", "OK"} {
		if got := servertest.Command(t, conn, stray); got != tfproto.Unknown {
			t.Fatalf("stray %q: %q", stray, got)
		}
	}
	// BREAK after the first chunk: OK, and the delete flag does not apply.
	chunks, final = rawFlow(t, conn, "RCVFILE 1 big", 1)
	if final != "OK" || len(chunks) != 1 {
		t.Fatalf("RCVFILE with BREAK: %d chunks, final %q", len(chunks), final)
	}
	if _, err := os.Stat(big); err != nil {
		t.Fatalf("file deleted after BREAK: %v", err)
	}
	// Any message but exactly BREAK continues.
	if err := conn.WriteFrameString("RCVFILE 1 big"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, answer := range []string{"break", "BREAK ", "XYZ"} {
		body, _ := conn.ReadFrame(0)
		got = append(got, body[5:]...)
		conn.WriteFrameString(answer)
	}
	if body, _ := conn.ReadFrame(0); string(body) != "OK" || !bytes.Equal(got, data) {
		t.Fatalf("final %q after %d bytes", body, len(got))
	}
	if _, err := os.Stat(big); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("flag 1: file not deleted after the transfer: %v", err)
	}
	// A listing uses the same flow and stray CONTs get UNKNOWN too.
	chunks, final = rawFlow(t, conn, "LS d", 0)
	if final != "OK" || len(chunks) != 1 || string(chunks[0]) != "F: f\nD: sub/\n" {
		t.Fatalf("LS d: %q %q", chunks, final)
	}
	if got := servertest.Command(t, conn, "CONT"); got != tfproto.Unknown {
		t.Fatalf("stray CONT after LS: %q", got)
	}
	chunks, final = rawFlow(t, conn, "LSR e", 0)
	if final != "OK" || len(chunks) != 0 {
		t.Fatalf("LSR of an empty dir: %q %q", chunks, final)
	}
	if got := servertest.Command(t, conn, "CONT"); got != tfproto.Unknown {
		t.Fatalf("stray CONT after LSR: %q", got)
	}
	if got := servertest.Command(t, conn, "ECHO in step"); got != "in step" {
		t.Fatalf("session out of step: %q", got)
	}
}

// TestFSReceiveFile transfers files of the sizes around the chunk boundary and
// 64 MiB once, comparing SHA-256 of the file on the server's disk with what the
// client received.
func TestFSReceiveFile(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	rng := rand.NewChaCha8([32]byte{1})
	sizes := []int{0, 1, maxPayload - 1, maxPayload, maxPayload + 1, 512<<10 - 1, 512 << 10, 512<<10 + 1, 64 << 20}
	if testing.Short() {
		sizes = sizes[:len(sizes)-1]
	}
	for _, size := range sizes {
		name := fmt.Sprintf("f%d", size)
		data := make([]byte, size)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(srv.Root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		onDisk := sha256File(t, filepath.Join(srv.Root, name))
		h := sha256.New()
		n, err := c.ReceiveFile(ctx, "/"+name, h, false)
		if err != nil || n != int64(size) {
			t.Fatalf("ReceiveFile %d bytes: got %d, %v", size, n, err)
		}
		if got := fmt.Sprintf("%x", h.Sum(nil)); got != onDisk {
			t.Fatalf("%d bytes: sha256 %s, on disk %s", size, got, onDisk)
		}
	}
	// Delete after send.
	n, err := c.ReceiveFile(ctx, "f1", io.Discard, true)
	if err != nil || n != 1 || exists(srv.Root, "f1") {
		t.Fatalf("ReceiveFile with delete: %d %v, exists %v", n, err, exists(srv.Root, "f1"))
	}
	// A writer that fails makes the client BREAK; the session stays usable and
	// the file stays.
	n, err = c.ReceiveFile(ctx, fmt.Sprintf("f%d", 512<<10+1), failAfter{}, true)
	if !errors.Is(err, errWriter) {
		t.Fatalf("failing writer: %d %v", n, err)
	}
	if !exists(srv.Root, fmt.Sprintf("f%d", 512<<10+1)) {
		t.Fatal("file deleted after BREAK")
	}
	if _, err := c.ReceiveFile(ctx, "nope", io.Discard, false); codeOf(t, err) != tfproto.CodeFileNotExist {
		t.Fatalf("missing file: %v", err)
	}
	if got, err := c.Echo(ctx, "ok"); err != nil || got != "ok" {
		t.Fatalf("session after BREAK: %q %v", got, err)
	}
}

// TestFSStreamStall: a client that stops answering in the middle of a
// RCVFILE flow is dropped after the idle timeout; the file stays.
func TestFSStreamStall(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.IdleTimeout = 300 * time.Millisecond })
	data := make([]byte, 3*maxPayload)
	os.WriteFile(filepath.Join(srv.Root, "big"), data, 0o644)
	conn := srv.DialHandshake(t)
	if err := conn.WriteFrameString("RCVFILE 1 big"); err != nil {
		t.Fatal(err)
	}
	if body, err := conn.ReadFrame(0); err != nil || !bytes.HasPrefix(body, []byte("CONT ")) {
		t.Fatalf("first chunk: %v", err)
	}
	servertest.ExpectClosed(t, conn)
	if !exists(srv.Root, "big") {
		t.Fatal("file deleted after an unfinished transfer")
	}
}

var errWriter = errors.New("writer failed")

type failAfter struct{}

func (failAfter) Write(p []byte) (int, error) { return 0, errWriter }

func sha256File(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// BenchmarkFSReceiveFile measures RCVFILE of a 64 MiB file over loopback
// (both ends ciphering, one CONT round trip per 512 KiB).
func BenchmarkFSReceiveFile(b *testing.B) {
	srv := servertest.Start(b)
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{2}).Read(data)
	if err := os.WriteFile(filepath.Join(srv.Root, "big"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	c := srv.Dial(b)
	ctx := servertest.Context(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if n, err := c.ReceiveFile(ctx, "big", io.Discard, false); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}
