package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHandshakeAndEcho(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	for _, in := range []string{"hello world", "", " leading", strings.Repeat("x", tfproto.MaxFrame-5)} {
		got, err := c.Echo(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got != in {
			t.Fatalf("echo of %d bytes returned %d bytes", len(in), len(got))
		}
	}
}

func TestSessionKeyLengths(t *testing.T) {
	srv := servertest.Start(t)
	for _, n := range []int{16, 17, 20, 33, 40, 64, 100, 214} {
		opts := srv.Options()
		opts.KeyLen = n
		c, err := client.Dial(servertest.Context(t), srv.Addr, opts)
		if err != nil {
			t.Fatalf("key length %d: %v", n, err)
		}
		if got, err := c.Echo(servertest.Context(t), strings.Repeat("k", 300)); err != nil || len(got) != 300 {
			t.Fatalf("key length %d: echo %v", n, err)
		}
		c.Close()
	}
}

func TestCoreCommands(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	before := time.Now().Add(-time.Second)

	d, err := c.Date(ctx)
	if err != nil || d.Before(before.Truncate(time.Second)) || d.After(time.Now().Add(time.Second)) {
		t.Fatalf("DATE %v %v", d, err)
	}
	u, err := c.UDate(ctx)
	if err != nil || u.Before(before) {
		t.Fatalf("UDATE %v %v", u, err)
	}
	n, err := c.NDate(ctx)
	if err != nil || n.Before(before) || n.Before(u) {
		t.Fatalf("NDATE %v %v", n, err)
	}
	f, err := c.DateF(ctx)
	if _, perr := time.Parse("2006-01-02 15:04:05", f); err != nil || perr != nil {
		t.Fatalf("DATEF %q %v", f, err)
	}
	free, err := c.FreeSpace(ctx)
	if err != nil || free == 0 {
		t.Fatalf("FREESP %d %v", free, err)
	}
	k1, err := c.ProcKey(ctx)
	if err != nil || !strings.HasPrefix(k1, "/") || len(k1) > 39 {
		t.Fatalf("PROCKEY %q %v", k1, err)
	}
	if k1b, _ := c.ProcKey(ctx); k1b != k1 {
		t.Fatalf("PROCKEY changed within a session: %q %q", k1, k1b)
	}
	if k2, _ := srv.Dial(t).ProcKey(ctx); k2 == k1 {
		t.Fatalf("two sessions share PROCKEY %q", k1)
	}
}

func TestDateConversions(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.DialHandshake(t)
	tests := []struct{ in, want string }{
		{"DTOF 0", "OK 1970-01-01 00:00:00"},
		{"DTOF 1700000000", "OK 2023-11-14 22:13:20"},
		{"DTOF -1", "OK 1969-12-31 23:59:59"},
		{"DTOF abc", "OK 1970-01-01 00:00:00"},
		{"DTOF  42xyz", "OK 1970-01-01 00:00:42"},
		{"DTOF ", "FAILED 16 : Missing parameter from command."},
		{"DTOF", "FAILED 16 : Missing parameter from command."},
		{"DTOF 99999999999999999", "FAILED 26 : Date is not representable."},
		{"DTOF 999999999999999999999", "FAILED 26 : Date is not representable."},
		{"FTOD 2023-11-14 22:13:20", "OK 1700000000"},
		{"FTOD 1970-01-01 00:00:00", "OK 0"},
		{"FTOD 2024-2-30 0:0:0", "OK 1709251200"},
		{"FTOD ", "FAILED 16 : Missing parameter from command."},
		{"FTOD garbage", "FAILED 26 : Date is not representable."},
		{"dtof 0", "OK 1970-01-01 00:00:00"},
	}
	for _, tt := range tests {
		if got := servertest.Command(t, c, tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestDispatcher(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.DialHandshake(t)
	tests := []struct{ in, want string }{
		{"ECHO hi", "hi"},
		{"echo hi", "hi"},
		{"EcHo hi", "hi"},
		{"ECHO  two", " two"},
		{"ECHO", ""},
		{"NOSUCH", "UNKNOWN"},
		{"", "UNKNOWN"},
		{"CONT", "UNKNOWN"},
		{"BREAK", "UNKNOWN"},
		{"OK", "UNKNOWN"},
		{strings.Repeat("A", 40) + " x", "UNKNOWN"},
		{"FOOXS_GATEWAYBAR", "UNKNOWN"},
		{"ECHO \x00\xff", "\x00\xff"},
	}
	for _, tt := range tests {
		if got := servertest.Command(t, c, tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
	}
	if err := c.WriteFrameString("END"); err != nil {
		t.Fatal(err)
	}
	servertest.ExpectClosed(t, c)
}

// plainStatus reads one unenciphered framed reply.
func plainStatus(t *testing.T, c *tfproto.Conn) string {
	t.Helper()
	b, err := c.ReadFrame(0)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandshakeFailures(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.HandshakeTimeout = 500 * time.Millisecond })
	pub := &servertest.Key(t).PublicKey
	key, _ := tfproto.NewSessionKey(nil, 32)
	ct, err := tfproto.EncryptSessionKey(pub, key)
	if err != nil {
		t.Fatal(err)
	}
	sendVersion := func(t *testing.T, c *tfproto.Conn) {
		t.Helper()
		c.WriteFrameString("0.0")
		if got := plainStatus(t, c); got != "OK" {
			t.Fatalf("version reply %q", got)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, c *tfproto.Conn)
	}{
		{"wrong version", func(t *testing.T, c *tfproto.Conn) {
			c.WriteFrameString("9.9")
			if got := plainStatus(t, c); got != "FAILED 2 : Incompatible protocol." {
				t.Fatalf("got %q", got)
			}
		}},
		{"FAI version", func(t *testing.T, c *tfproto.Conn) {
			c.WriteFrameString("FAI://0123")
			if got := plainStatus(t, c); got != "FAILED 2 : Incompatible protocol." {
				t.Fatalf("got %q", got)
			}
		}},
		{"version with newline", func(t *testing.T, c *tfproto.Conn) {
			c.WriteFrameString("0.0\n")
			if got := plainStatus(t, c); got != "FAILED 2 : Incompatible protocol." {
				t.Fatalf("got %q", got)
			}
		}},
		{"RSA 255 bytes", func(t *testing.T, c *tfproto.Conn) {
			sendVersion(t, c)
			c.WriteFrame(ct[:255])
			if got := plainStatus(t, c); got != "FAILED 25 : Bad public rsa encryption key." {
				t.Fatalf("got %q", got)
			}
		}},
		{"RSA 257 bytes", func(t *testing.T, c *tfproto.Conn) {
			sendVersion(t, c)
			c.WriteFrame(append(append([]byte(nil), ct...), 0))
			if got := plainStatus(t, c); got != "FAILED 25 : Bad public rsa encryption key." {
				t.Fatalf("got %q", got)
			}
		}},
		{"RSA garbage", func(t *testing.T, c *tfproto.Conn) {
			sendVersion(t, c)
			c.WriteFrame(bytes.Repeat([]byte{0x5a}, 256))
			if got := plainStatus(t, c); got != "FAILED 25 : Bad public rsa encryption key." {
				t.Fatalf("got %q", got)
			}
		}},
		{"short session key", func(t *testing.T, c *tfproto.Conn) {
			sendVersion(t, c)
			short, _ := tfproto.EncryptSessionKey(pub, key[:15])
			c.WriteFrame(short)
			if got := plainStatus(t, c); got != "FAILED 25 : Bad public rsa encryption key." {
				t.Fatalf("got %q", got)
			}
		}},
		{"degenerate session key", func(t *testing.T, c *tfproto.Conn) {
			sendVersion(t, c)
			zero, _ := tfproto.EncryptSessionKey(pub, make([]byte, 16))
			c.WriteFrame(zero)
			if got := plainStatus(t, c); got != "FAILED 25 : Bad public rsa encryption key." {
				t.Fatalf("got %q", got)
			}
		}},
		{"wrong hash", func(t *testing.T, c *tfproto.Conn) {
			err := tfproto.ClientHandshake(c, "0.0", "nothash", pub, key)
			var fe *tfproto.Error
			if !errors.As(err, &fe) || fe.Code != tfproto.CodeInvalidHash || fe.Text != "Invalid hash string." {
				t.Fatalf("got %v", err)
			}
		}},
		{"hash with trailing NUL is accepted", func(t *testing.T, c *tfproto.Conn) {
			if err := tfproto.ClientHandshake(c, "0.0\x00", "testhash\x00", pub, key); err != nil {
				t.Fatal(err)
			}
			if got := servertest.Command(t, c, "ECHO ok"); got != "ok" {
				t.Fatalf("echo %q", got)
			}
			c.WriteFrameString("END")
		}},
		{"silent client hits the handshake deadline", func(t *testing.T, c *tfproto.Conn) {}},
		{"negative version length", func(t *testing.T, c *tfproto.Conn) {
			c.NetConn().Write([]byte{0xff, 0xff, 0xff, 0xfe})
		}},
		{"oversize version length", func(t *testing.T, c *tfproto.Conn) {
			c.NetConn().Write(binary.BigEndian.AppendUint32(nil, 700*1024))
		}},
		{"garbage bytes", func(t *testing.T, c *tfproto.Conn) {
			c.NetConn().Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		}},
		{"truncated frame then silence", func(t *testing.T, c *tfproto.Conn) {
			c.NetConn().Write([]byte{0, 0, 0, 9, '0', '.'})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.DialRaw(t)
			tt.run(t, c)
			servertest.ExpectClosed(t, c)
		})
	}
	// The server still serves.
	if got, err := srv.Dial(t).Echo(servertest.Context(t), "alive"); err != nil || got != "alive" {
		t.Fatalf("after bad sessions: %q %v", got, err)
	}
}

func TestBadFramesAfterHandshake(t *testing.T) {
	srv := servertest.Start(t)
	tests := []struct {
		name string
		hdr  int32
	}{
		{"negative", -1},
		{"most negative", -2147483648},
		{"oversize", tfproto.MaxFrame + 1},
		{"huge", 0x7fffffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.DialHandshake(t)
			if err := c.WriteInt32(tt.hdr); err != nil {
				t.Fatal(err)
			}
			servertest.ExpectClosed(t, c)
		})
	}
	// A frame of exactly MaxFrame is legal.
	c := srv.DialHandshake(t)
	if got := servertest.Command(t, c, "ECHO "+strings.Repeat("z", tfproto.MaxFrame-5)); len(got) != tfproto.MaxFrame-5 {
		t.Fatalf("max frame echo: %d bytes", len(got))
	}
	if got, err := srv.Dial(t).Echo(servertest.Context(t), "alive"); err != nil || got != "alive" {
		t.Fatalf("after bad frames: %q %v", got, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := srv.DialHandshake(t)
	if got := servertest.Command(t, c, "ECHO a"); got != "a" {
		t.Fatal(got)
	}
	servertest.ExpectClosed(t, c)
}

func TestMaxSessions(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.MaxSessions = 2 })
	srv.Dial(t)
	srv.Dial(t)
	_, err := client.Dial(servertest.Context(t), srv.Addr, srv.Options())
	var fe *tfproto.Error
	if !errors.As(err, &fe) || fe.Code != tfproto.CodeMemory || !strings.Contains(fe.Text, "Too many sessions") {
		t.Fatalf("third session: %v", err)
	}
}

func TestConcurrentSessions(t *testing.T) {
	srv := servertest.Start(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(servertest.Context(t), srv.Addr, srv.Options())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range 50 {
				want := strconv.Itoa(i*1000 + j)
				if got, err := c.Echo(servertest.Context(t), want); err != nil || got != want {
					t.Errorf("echo %q: %q %v", want, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestShutdownLetsSessionsFinish: on shutdown the listener closes at once and a
// session waiting for its next command is closed.
func TestShutdown(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.DialHandshake(t)
	if got := servertest.Command(t, c, "ECHO before"); got != "before" {
		t.Fatal(got)
	}
	srv.Stop()
	servertest.ExpectClosed(t, c)
	if _, err := client.Dial(servertest.Context(t), srv.Addr, srv.Options()); err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}
