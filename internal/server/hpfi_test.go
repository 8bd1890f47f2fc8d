package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func readRoot(t *testing.T, srv *servertest.Server, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join(srv.Root, name))
}

func writeRoot(t *testing.T, srv *servertest.Server, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(srv.Root, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// alive checks that the session still works after a transfer.
func alive(t *testing.T, c *client.Client) {
	t.Helper()
	if got, err := c.Echo(servertest.Context(t), "still here"); err != nil || got != "still here" {
		t.Fatalf("session after transfer: %q %v", got, err)
	}
}

// TestHPFRoundTrip moves files of several sizes both ways with every command
// and buffer sizes below, at and above the piece size, on one session, with
// the fused cipher and with the keystream produced ahead (client and server).
func TestHPFRoundTrip(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(map[bool]string{false: "fused", true: "ahead"}[ahead], func(t *testing.T) {
			defer server.SetHPFKeystreamAhead(ahead)()
			testHPFRoundTrip(t, ahead)
		})
	}
}

func testHPFRoundTrip(t *testing.T, ahead bool) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	sizes := []int{0, 1, 7, 4096, 512*1024 - 3, 512 * 1024, 2*1024*1024 + 11}
	bufs := []int64{1000, 512 * 1024, 3 << 20}
	for i, size := range sizes {
		for j, bufsz := range bufs {
			if bufsz < 4096 && size > 8192 {
				continue // thousands of tiny chunks: slow under -race, nothing new
			}
			opts := []client.HPFOption{client.WithBufferSize(bufsz)}
			if ahead {
				opts = append(opts, client.WithKeystreamAhead())
			}
			data := randBytes(size, uint64(i*10+j))
			for _, can := range []bool{false, true} {
				name := "f" + string(rune('a'+i)) + string(rune('a'+j))
				var err error
				var n int64
				if can {
					n, err = c.PutFileCan(ctx, "/"+name, bytes.NewReader(data), 0, 3, opts...)
				} else {
					n, err = c.PutFile(ctx, name, bytes.NewReader(data), 0, opts...)
				}
				if err != nil || n != int64(size) {
					t.Fatalf("put %d bytes buf %d can %v: n=%d err=%v", size, bufsz, can, n, err)
				}
				if got := readRoot(t, srv, name); !bytes.Equal(got, data) {
					t.Fatalf("put %d bytes buf %d can %v: file differs (%d bytes)", size, bufsz, can, len(got))
				}
				var out bytes.Buffer
				if can {
					n, err = c.GetFileCan(ctx, name, &out, 0, 2, opts...)
				} else {
					n, err = c.GetFile(ctx, name, &out, 0, opts...)
				}
				if err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("get %d bytes buf %d can %v: n=%d err=%v equal=%v", size, bufsz, can, n, err, bytes.Equal(out.Bytes(), data))
				}
			}
		}
	}
	alive(t, c)
}

// hpfBody builds "NAME path SP struct" by hand.
func hpfBody(name, path string, offset uint64, bufsz int64, canpt *uint64) []byte {
	b := []byte(name + " " + path + " ")
	b = binary.BigEndian.AppendUint64(b, offset)
	b = binary.BigEndian.AppendUint64(b, uint64(bufsz))
	if canpt != nil {
		b = binary.BigEndian.AppendUint64(b, *canpt)
	}
	return b
}

// hpfOpenRaw sends an HPFI request on a raw session and returns the negotiated
// buffer, or fails the test unless the reply is OK.
func hpfOpenRaw(t *testing.T, conn *tfproto.Conn, body []byte) int64 {
	t.Helper()
	if err := conn.WriteFrame(body); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.ReadFrame(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != 11 || string(reply[:3]) != "OK " {
		t.Fatalf("reply %q", reply)
	}
	return int64(binary.BigEndian.Uint64(reply[3:]))
}

func readCode(t *testing.T, conn *tfproto.Conn) int64 {
	t.Helper()
	v, err := conn.ReadInt64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sendChunk(t *testing.T, conn *tfproto.Conn, data []byte) {
	t.Helper()
	if err := conn.WriteFields(tfproto.Int64Field(int64(len(data))), data); err != nil {
		t.Fatal(err)
	}
}

func sendCode(t *testing.T, conn *tfproto.Conn, code int64) {
	t.Helper()
	if err := conn.WriteInt64(code); err != nil {
		t.Fatal(err)
	}
}

// readChunk reads a server chunk header and its data.
func readChunk(t *testing.T, conn *tfproto.Conn) (int64, []byte) {
	t.Helper()
	n := readCode(t, conn)
	if n <= 0 {
		return n, nil
	}
	b := make([]byte, n)
	if err := conn.ReadField(b); err != nil {
		t.Fatal(err)
	}
	return n, b
}

func u64p(v uint64) *uint64 { return &v }

// TestHPFFailures covers every FAILED answer and the buffer negotiation.
func TestHPFFailures(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.HPFIMaxBuffer = 64 * 1024 })
	writeRoot(t, srv, "file", []byte("abcdef"))
	if err := os.Mkdir(filepath.Join(srv.Root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(srv.Root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	conn := srv.DialHandshake(t)
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"no args", []byte("PUT"), "FAILED 16"},
		{"short GET", []byte("GET " + strings.Repeat("\x00", 16)), "FAILED 16"},
		{"PUTCAN with a 16-byte struct", []byte("PUTCAN " + strings.Repeat("\x00", 16)), "FAILED 16"},
		{"escape", hpfBody("PUT", "../x", 0, 10, nil), "FAILED 1"},
		{"escape GETCAN", hpfBody("GETCAN", "a/../../x", 0, 10, u64p(1)), "FAILED 1"},
		{"missing file", hpfBody("GET", "nope", 0, 10, nil), "FAILED 34"},
		{"missing dir for PUT", hpfBody("PUT", "nodir/x", 0, 10, nil), "FAILED 34"},
		{"directory GET", hpfBody("GET", "dir", 0, 10, nil), "FAILED 34"},
		{"directory PUT", hpfBody("PUTCAN", "dir", 0, 10, u64p(0)), "FAILED 34"},
		{"root", hpfBody("GET", "", 0, 10, nil), "FAILED 34"},
		{"fifo GET", hpfBody("GET", "fifo", 0, 10, nil), "FAILED 34"},
		{"fifo PUT", hpfBody("PUT", "fifo", 0, 10, nil), "FAILED 34"},
		{"offset over int64", hpfBody("GET", "file", 1<<63, 10, nil), "FAILED 35"},
		{"negative buffer", hpfBody("PUT", "newfile", 0, -1, nil), "FAILED 36"},
	}
	for _, tt := range tests {
		if err := conn.WriteFrame(tt.body); err != nil {
			t.Fatal(err)
		}
		reply, err := conn.ReadFrame(0)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !strings.HasPrefix(string(reply), tt.want+" : ") {
			t.Fatalf("%s: got %q want %s", tt.name, reply, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "newfile")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused PUT created its file")
	}
	// Negotiation: never more than asked, never more than the cap; 0 is fine
	// (GET then ends at once).
	for _, tc := range []struct{ ask, want int64 }{{100, 100}, {1 << 40, 64 * 1024}, {0, 0}} {
		if got := hpfOpenRaw(t, conn, hpfBody("GET", "file", 0, tc.ask, nil)); got != tc.want {
			t.Fatalf("asked %d got %d", tc.ask, got)
		}
		if tc.want == 0 {
			if code := readCode(t, conn); code != tfproto.HPFEnd {
				t.Fatalf("GET with buffer 0 sent %d", code)
			}
		} else {
			if n, b := readChunk(t, conn); n != 6 || string(b) != "abcdef" {
				t.Fatalf("chunk %d %q", n, b)
			}
			if code := readCode(t, conn); code != tfproto.HPFEnd {
				t.Fatalf("end code %d", code)
			}
		}
		sendCode(t, conn, tfproto.HPFFin)
		if code := readCode(t, conn); code != tfproto.HPFFin {
			t.Fatalf("FIN answer %d", code)
		}
	}
	if got := servertest.Command(t, conn, "ECHO ok"); got != "ok" {
		t.Fatalf("after transfers: %q", got)
	}
}

// TestHPFStopAndResume uploads in two parts, the first ended with HPFSTOP, and
// checks PUT writes in place without truncating.
func TestHPFStopAndResume(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	data := randBytes(3*1024*1024+5, 42)
	half := int64(len(data) / 2)
	if n, err := c.PutFile(ctx, "big", bytes.NewReader(data[:half]), 0, client.WithStop(), client.WithBufferSize(256*1024)); err != nil || n != half {
		t.Fatalf("first part: %d %v", n, err)
	}
	if got := readRoot(t, srv, "big"); !bytes.Equal(got, data[:half]) {
		t.Fatal("after HPFSTOP the first part is not stored")
	}
	if n, err := c.PutFile(ctx, "big", bytes.NewReader(data[half:]), half); err != nil || n != int64(len(data))-half {
		t.Fatalf("resume: %d %v", n, err)
	}
	if got := readRoot(t, srv, "big"); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs from the original")
	}
	// In place, no truncation: "abcdef" + "X" at 1 = "aXcdef" (WIRE.md §5.25).
	writeRoot(t, srv, "small", []byte("abcdef"))
	if _, err := c.PutFile(ctx, "small", strings.NewReader("X"), 1); err != nil {
		t.Fatal(err)
	}
	if got := string(readRoot(t, srv, "small")); got != "aXcdef" {
		t.Fatalf("in-place write gave %q", got)
	}
	if _, err := c.PutFileCan(ctx, "small", strings.NewReader("YZ"), 4, 1, client.WithStop()); err != nil {
		t.Fatal(err)
	}
	if got := string(readRoot(t, srv, "small")); got != "aXcdYZ" {
		t.Fatalf("PUTCAN in place gave %q", got)
	}
	alive(t, c)
}

// TestHPFOffsets reads from and writes past the end of a file.
func TestHPFOffsets(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	writeRoot(t, srv, "f", []byte("0123456789"))
	for _, tc := range []struct {
		off  int64
		want string
	}{{0, "0123456789"}, {4, "456789"}, {10, ""}, {1 << 40, ""}} {
		for _, can := range []bool{false, true} {
			var out bytes.Buffer
			var err error
			if can {
				_, err = c.GetFileCan(ctx, "f", &out, tc.off, 1, client.WithBufferSize(3))
			} else {
				_, err = c.GetFile(ctx, "f", &out, tc.off, client.WithBufferSize(3))
			}
			if err != nil || out.String() != tc.want {
				t.Fatalf("get at %d (can %v): %q %v", tc.off, can, out.String(), err)
			}
		}
	}
	// PUT past the end leaves a hole of zeros.
	if _, err := c.PutFile(ctx, "f", strings.NewReader("end"), 12); err != nil {
		t.Fatal(err)
	}
	if got := string(readRoot(t, srv, "f")); got != "0123456789\x00\x00end" {
		t.Fatalf("put past the end gave %q", got)
	}
	alive(t, c)
}

// cancelReader yields data and cancels ctx once it has given after bytes.
type cancelReader struct {
	data   []byte
	after  int
	cancel context.CancelFunc
	given  int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if r.given >= len(r.data) {
		return 0, io.EOF
	}
	if r.given >= r.after {
		r.cancel()
	}
	n := copy(p, r.data[r.given:])
	r.given += n
	return n, nil
}

// cancelWriter cancels ctx at its first write.
type cancelWriter struct {
	n      int
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.cancel()
	w.n += len(p)
	return len(p), nil
}

// TestHPFClientCancel cancels every command through ctx mid-flow: PUT and
// PUTCAN uploads are deleted, and the session stays usable.
func TestHPFClientCancel(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	data := randBytes(4*1024*1024, 7)
	writeRoot(t, srv, "src", data)
	for _, can := range []bool{false, true} {
		ctx, cancel := context.WithCancel(servertest.Context(t))
		r := &cancelReader{data: data, after: 256 * 1024, cancel: cancel}
		var err error
		if can {
			_, err = c.PutFileCan(ctx, "up", r, 0, 2, client.WithBufferSize(64*1024))
		} else {
			_, err = c.PutFile(ctx, "up", r, 0, client.WithBufferSize(64*1024))
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("put (can %v) after cancel: %v", can, err)
		}
		alive(t, c)
		if _, err := os.Stat(filepath.Join(srv.Root, "up")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cancelled upload (can %v) not removed: %v", can, err)
		}
	}
	for _, can := range []bool{false, true} {
		ctx, cancel := context.WithCancel(servertest.Context(t))
		w := &cancelWriter{cancel: cancel}
		var err error
		if can {
			_, err = c.GetFileCan(ctx, "src", w, 0, 4, client.WithBufferSize(64*1024))
		} else {
			_, err = c.GetFile(ctx, "src", w, 0, client.WithBufferSize(64*1024))
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("get (can %v) after cancel: %v", can, err)
		}
		if w.n >= len(data) {
			t.Fatalf("get (can %v): cancel did not stop the flow", can)
		}
		alive(t, c)
	}
	if got := readRoot(t, srv, "src"); !bytes.Equal(got, data) {
		t.Fatal("source changed")
	}
}

// TestHPFServerCancel injects write and read errors: the server cancels, an
// upload is deleted, and the session stays usable.
func TestHPFServerCancel(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	data := randBytes(2*1024*1024, 9)
	writeRoot(t, srv, "src", data)
	restore := server.SetHPFWriteFault(func(off int64, n int) error {
		if off >= 512*1024 {
			return syscall.ENOSPC
		}
		return nil
	})
	for _, tc := range []struct {
		name  string
		canpt uint64
	}{{"PUT", 0}, {"PUTCAN", 1}, {"PUTCAN", 3}} {
		var err error
		if tc.name == "PUT" {
			_, err = c.PutFile(ctx, "up", bytes.NewReader(data), 0, client.WithBufferSize(128*1024))
		} else {
			_, err = c.PutFileCan(ctx, "up", bytes.NewReader(data), 0, tc.canpt, client.WithBufferSize(128*1024))
		}
		if !errors.Is(err, client.ErrServerCancelled) {
			t.Fatalf("%s canpt %d: %v", tc.name, tc.canpt, err)
		}
		alive(t, c)
		if _, err := os.Stat(filepath.Join(srv.Root, "up")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s canpt %d: file not removed after the server's cancel", tc.name, tc.canpt)
		}
	}
	restore()
	restore = server.SetHPFReadFault(func(off int64) error {
		if off >= 1024*1024 {
			return syscall.EIO
		}
		return nil
	})
	defer restore()
	for _, can := range []bool{false, true} {
		var out bytes.Buffer
		var err error
		if can {
			_, err = c.GetFileCan(ctx, "src", &out, 0, 1, client.WithBufferSize(256*1024))
		} else {
			_, err = c.GetFile(ctx, "src", &out, 0, client.WithBufferSize(256*1024))
		}
		if !errors.Is(err, client.ErrServerCancelled) {
			t.Fatalf("GET (can %v) with a read error: %v", can, err)
		}
		if !bytes.Equal(out.Bytes(), data[:out.Len()]) || out.Len() != 1024*1024 {
			t.Fatalf("GET (can %v): %d bytes before the cancel", can, out.Len())
		}
		alive(t, c)
	}
}

// TestHPFCanWindowsRaw checks the exact GETCAN and PUTCAN window bytes of
// WIRE.md §5.27–5.28 with a hand-driven session.
func TestHPFCanWindowsRaw(t *testing.T) {
	srv := servertest.Start(t)
	writeRoot(t, srv, "six", []byte("abcdef"))
	conn := srv.DialHandshake(t)

	// 6-byte file, bufsz 2, canpt 2: 2,ab 2,cd <client: CONT> 2,ef 0.
	hpfOpenRaw(t, conn, hpfBody("GETCAN", "six", 0, 2, u64p(2)))
	for _, want := range []string{"ab", "cd"} {
		if n, b := readChunk(t, conn); n != 2 || string(b) != want {
			t.Fatalf("chunk %d %q want %q", n, b, want)
		}
	}
	sendCode(t, conn, tfproto.HPFCont)
	if n, b := readChunk(t, conn); n != 2 || string(b) != "ef" {
		t.Fatalf("chunk after CONT %d %q", n, b)
	}
	if code := readCode(t, conn); code != tfproto.HPFEnd {
		t.Fatalf("end %d", code)
	}
	// EOF at a window: the client still owes its code before HPFEND.
	hpfOpenRaw(t, conn, hpfBody("GETCAN", "six", 2, 2, u64p(2)))
	readChunk(t, conn)
	readChunk(t, conn)
	sendCode(t, conn, tfproto.HPFCont)
	if code := readCode(t, conn); code != tfproto.HPFEnd {
		t.Fatalf("end after the window %d", code)
	}
	// HPFCANCEL at a window stops at once, silently.
	hpfOpenRaw(t, conn, hpfBody("GETCAN", "six", 0, 2, u64p(1)))
	readChunk(t, conn)
	sendCode(t, conn, tfproto.HPFCancel)
	if got := servertest.Command(t, conn, "ECHO after getcan"); got != "after getcan" {
		t.Fatalf("after a GETCAN cancel: %q", got)
	}

	// PUTCAN canpt 2: CONT after every second chunk; END ends at once.
	hpfOpenRaw(t, conn, hpfBody("PUTCAN", "up", 0, 4, u64p(2)))
	sendChunk(t, conn, []byte("1234"))
	sendChunk(t, conn, []byte("5678"))
	if code := readCode(t, conn); code != tfproto.HPFCont {
		t.Fatalf("PUTCAN window sent %d", code)
	}
	sendChunk(t, conn, []byte("9"))
	sendCode(t, conn, tfproto.HPFEnd)
	if got := servertest.Command(t, conn, "ECHO after putcan"); got != "after putcan" {
		t.Fatalf("after PUTCAN: %q", got)
	}
	if got := string(readRoot(t, srv, "up")); got != "123456789" {
		t.Fatalf("PUTCAN stored %q", got)
	}
	// A client HPFCANCEL deletes the file, with no reply.
	hpfOpenRaw(t, conn, hpfBody("PUTCAN", "up", 0, 4, u64p(0)))
	sendChunk(t, conn, []byte("zz"))
	sendCode(t, conn, tfproto.HPFCancel)
	if got := servertest.Command(t, conn, "ECHO x"); got != "x" {
		t.Fatalf("after a PUTCAN cancel: %q", got)
	}
	if _, err := os.Stat(filepath.Join(srv.Root, "up")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("PUTCAN cancel did not delete the file")
	}

	// PUT: the FIN handshake, server first; chunks in flight after the end
	// code are drained.
	hpfOpenRaw(t, conn, hpfBody("PUT", "p", 0, 8, nil))
	sendChunk(t, conn, []byte("hello"))
	sendCode(t, conn, tfproto.HPFEnd)
	if code := readCode(t, conn); code != tfproto.HPFFin {
		t.Fatalf("PUT end answered %d", code)
	}
	sendChunk(t, conn, []byte("late"))
	sendCode(t, conn, tfproto.HPFStop)
	sendCode(t, conn, tfproto.HPFFin)
	if got := servertest.Command(t, conn, "ECHO y"); got != "y" {
		t.Fatalf("after PUT: %q", got)
	}
	if got := string(readRoot(t, srv, "p")); got != "hello" {
		t.Fatalf("PUT stored %q", got)
	}
	// GET: the client's cancel and FIN at once; the server ends with FIN.
	hpfOpenRaw(t, conn, hpfBody("GET", "six", 0, 1, nil))
	readChunk(t, conn)
	conn.WriteFields(tfproto.Int64Field(tfproto.HPFCancel), tfproto.Int64Field(tfproto.HPFFin))
	for {
		n, _ := readChunk(t, conn)
		if n == tfproto.HPFFin {
			break
		}
		if n < 0 {
			t.Fatalf("GET cancel: code %d", n)
		}
	}
	if got := servertest.Command(t, conn, "ECHO z"); got != "z" {
		t.Fatalf("after GET cancel: %q", got)
	}
}

// TestHPFProtocolErrors: an oversize chunk, an unknown code and an early FIN
// close the session; the server goes on serving.
func TestHPFProtocolErrors(t *testing.T) {
	srv := servertest.Start(t)
	writeRoot(t, srv, "f", []byte("data"))
	cases := []struct {
		name string
		run  func(conn *tfproto.Conn)
	}{
		{"oversize chunk", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("PUT", "o", 0, 16, nil))
			conn.WriteFields(tfproto.Int64Field(17), make([]byte, 17))
		}},
		{"chunk with a zero buffer", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("PUTCAN", "o", 0, 0, u64p(0)))
			conn.WriteFields(tfproto.Int64Field(1), []byte{1})
		}},
		{"oversize chunk in the drain", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("PUT", "o", 0, 16, nil))
			sendCode(t, conn, tfproto.HPFEnd)
			readCode(t, conn)
			conn.WriteFields(tfproto.Int64Field(1<<40), make([]byte, 64))
		}},
		{"HPFCONT in PUT", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("PUT", "o", 0, 16, nil))
			sendCode(t, conn, tfproto.HPFCont)
		}},
		{"early FIN", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("PUT", "o", 0, 16, nil))
			sendCode(t, conn, tfproto.HPFFin)
		}},
		{"unknown code in GET", func(conn *tfproto.Conn) {
			hpfOpenRaw(t, conn, hpfBody("GET", "f", 0, 16, nil))
			sendCode(t, conn, 12345)
		}},
	}
	for _, tc := range cases {
		conn := srv.DialHandshake(t)
		tc.run(conn)
		servertest.ExpectClosed(t, conn)
		if got := servertest.Command(t, srv.DialHandshake(t), "ECHO fine"); got != "fine" {
			t.Fatalf("%s: server after: %q", tc.name, got)
		}
	}
}

// TestHPFDisconnect drops the connection in the middle of transfers; the server
// keeps serving and leaks nothing (goleak checks at the end).
func TestHPFDisconnect(t *testing.T) {
	srv := servertest.Start(t)
	writeRoot(t, srv, "big", randBytes(8*1024*1024, 1))
	// Mid-PUT, inside a chunk.
	conn := srv.DialHandshake(t)
	hpfOpenRaw(t, conn, hpfBody("PUT", "up", 0, 1<<20, nil))
	sendChunk(t, conn, randBytes(1<<20, 2))
	conn.WriteFields(tfproto.Int64Field(1000), make([]byte, 10))
	conn.NetConn().Close()
	// Mid-GET, with the server blocked on a full socket.
	conn = srv.DialHandshake(t)
	hpfOpenRaw(t, conn, hpfBody("GET", "big", 0, 1<<20, nil))
	readChunk(t, conn)
	conn.NetConn().Close()
	// Mid-GETCAN, while the server waits for the window's code.
	conn = srv.DialHandshake(t)
	hpfOpenRaw(t, conn, hpfBody("GETCAN", "big", 0, 1000, u64p(1)))
	readChunk(t, conn)
	conn.NetConn().Close()

	deadline := time.Now().Add(10 * time.Second)
	for srv.Srv.ActiveSessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Srv.ActiveSessions(); n != 0 {
		t.Fatalf("%d sessions still open after the disconnects", n)
	}
	c := srv.Dial(t)
	var out bytes.Buffer
	if _, err := c.GetFile(servertest.Context(t), "big", &out, 0); err != nil || out.Len() != 8*1024*1024 {
		t.Fatalf("after disconnects: %d %v", out.Len(), err)
	}
	// The complete first chunk of the dropped PUT is in place.
	if got := readRoot(t, srv, "up"); len(got) != 1<<20 {
		t.Fatalf("dropped PUT left %d bytes", len(got))
	}
}
