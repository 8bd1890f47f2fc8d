package server_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// FuzzSndFileMessages drives SNDFILE with arbitrary chunk messages (the input
// split at 0xFF bytes) against a model of WIRE.md §5.13: BREAK ends with OK
// and no file, OK publishes exactly the bytes after the first SP of every
// other message, a message without SP closes the connection, and a client
// that stops early leaves nothing behind.
func FuzzSndFileMessages(f *testing.F) {
	for _, s := range []string{
		"CONT abc\xffOK",
		"CONT abc\xffXYZ d e\xffCONT \xffOK trailing",
		"CONT abc\xffBREAK",
		"CONT abc\xffBREAK x",
		"CONT abc\xffCONT",
		"CONT abc\xff",
		"",
		"ok",
		"OK",
		"\xff\xff",
		" leading\xffOK",
	} {
		f.Add([]byte(s))
	}
	srv := servertest.Start(f)
	n := 0
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs := bytes.Split(in, []byte{0xff})
		if len(msgs) > 32 {
			return
		}
		n++
		name := "f" + strconv.Itoa(n)
		target := filepath.Join(srv.Root, name)
		conn := srv.DialHandshake(t)
		if got := servertest.Command(t, conn, "SNDFILE 0 "+name); got != "CONT" {
			t.Fatalf("SNDFILE: %q", got)
		}
		var want []byte
		published := false
	loop:
		for _, m := range msgs {
			tok, data, hasSP := bytes.Cut(m, []byte{' '})
			switch {
			case string(tok) == "BREAK" || string(tok) == "OK":
				if got := servertest.Command(t, conn, string(m)); got != "OK" {
					t.Fatalf("%q: %q", m, got)
				}
				published = string(tok) == "OK"
				break loop
			case !hasSP:
				if err := conn.WriteFrame(m); err != nil {
					t.Fatal(err)
				}
				servertest.ExpectClosed(t, conn)
				break loop
			}
			want = append(want, data...)
			if got := servertest.Command(t, conn, string(m)); got != "CONT" {
				t.Fatalf("%q: %q", m, got)
			}
		}
		conn.NetConn().Close()
		waitSessions(t, srv, 0)
		got, err := os.ReadFile(target)
		switch {
		case published && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("published %q, %v; want %q", got, err, want)
		case !published && !errors.Is(err, os.ErrNotExist):
			t.Fatalf("unpublished transfer left %q, %v", got, err)
		}
		if names := dirNames(t, srv.Root); len(names) > n {
			t.Fatalf("leftover entries: %v", names)
		}
	})
}

// FuzzSupChunks drives SUP with arbitrary chunk sequences (the input split at
// 0xFF; a part starting with 'E' ends the upload, 'C' cancels it, 'X' sends an
// oversized header, anything else is a chunk of that data, empty parts are
// skipped) against a model of WIRE.md §5.38.
func FuzzSupChunks(f *testing.F) {
	for _, s := range []string{"abc\xffE", "abc\xffdef\xffE", "abc\xffC", "E", "C", "abc\xffX", "abc", "", "\xff\xffE"} {
		f.Add([]byte(s))
	}
	srv := servertest.Start(f)
	n := 0
	f.Fuzz(func(t *testing.T, in []byte) {
		parts := bytes.Split(in, []byte{0xff})
		if len(parts) > 32 {
			return
		}
		n++
		name := "s" + strconv.Itoa(n)
		conn := srv.DialHandshake(t)
		if err := conn.WriteFrameString("SUP " + name); err != nil {
			t.Fatal(err)
		}
		var want []byte
		published := false
	loop:
		for _, p := range parts {
			switch {
			case len(p) == 0:
				continue
			case p[0] == 'E':
				if err := conn.WriteInt32(0); err != nil {
					t.Fatal(err)
				}
				if v, err := conn.ReadInt32(); err != nil || v != 0 {
					t.Fatalf("SUP result %d, %v", v, err)
				}
				published = true
				break loop
			case p[0] == 'C':
				if err := conn.WriteInt32(-1); err != nil {
					t.Fatal(err)
				}
				if got := servertest.Command(t, conn, "ECHO in step"); got != "in step" {
					t.Fatalf("echo after cancel: %q", got)
				}
				break loop
			case p[0] == 'X':
				if err := conn.WriteInt32(tfproto.MaxFrame + 1); err != nil {
					t.Fatal(err)
				}
				servertest.ExpectClosed(t, conn)
				break loop
			}
			if err := conn.WriteFields(tfproto.Int32Field(int32(len(p))), p); err != nil {
				t.Fatal(err)
			}
			want = append(want, p...)
		}
		conn.NetConn().Close()
		waitSessions(t, srv, 0)
		got, err := os.ReadFile(filepath.Join(srv.Root, name))
		switch {
		case published && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("published %q, %v; want %q", got, err, want)
		case !published && !errors.Is(err, os.ErrNotExist):
			t.Fatalf("unpublished upload left %q, %v", got, err)
		}
	})
}
