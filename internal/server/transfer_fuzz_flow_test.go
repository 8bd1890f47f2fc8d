package server_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
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
