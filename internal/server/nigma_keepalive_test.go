package server_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func TestNigma(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	seen := map[string]bool{}
	for _, n := range []int{8, 12, 16, 32, 100, 212} {
		key, err := c.Nigma(ctx, n)
		if err != nil {
			t.Fatalf("NIGMA %d: %v", n, err)
		}
		if len(key) != n {
			t.Fatalf("NIGMA %d: key of %d bytes", n, len(key))
		}
		if seen[string(key)] {
			t.Fatalf("NIGMA %d: repeated key", n)
		}
		seen[string(key)] = true
		// Every kind of traffic works under the new key: framed, raw both
		// ways, long messages that wrap the key.
		msg := strings.Repeat("after nigma ", 50)
		if got, err := c.Echo(ctx, msg); err != nil || got != msg {
			t.Fatalf("ECHO after NIGMA %d: %v", n, err)
		}
		data := randBytes(70000, uint64(n))
		if _, err := c.Upload(ctx, "f", bytes.NewReader(data)); err != nil {
			t.Fatalf("SUP after NIGMA %d: %v", n, err)
		}
		checkRoundTrip(t, ctx, c, srv.Root, "f", data)
	}
	bad := []string{"0", "4", "7", "9", "10", "13", "216", "1024", "2147483648", "-8", "+8", " 8", "8 ", "08x", "abc", ""}
	for _, arg := range bad {
		st, err := c.Do(ctx, "NIGMA "+arg)
		if err != nil || st.Kind != tfproto.KindFailed || st.Code != tfproto.CodeSwapKey {
			t.Fatalf("NIGMA %q: %v %v", arg, st, err)
		}
	}
	if _, err := c.Nigma(ctx, 10); failCode(err) != tfproto.CodeSwapKey {
		t.Fatalf("client NIGMA 10: %v", err)
	}
	if got, err := c.Echo(ctx, "still"); err != nil || got != "still" {
		t.Fatalf("ECHO after bad NIGMAs: %q %v", got, err)
	}
}

// TestNigmaWire checks the exact sequence on the wire: framed OK, raw
// hdr32(keylen), raw key, all under the old state; then both directions use
// the new key with the seed re-derived from it.
func TestNigmaWire(t *testing.T) {
	srv := servertest.Start(t)
	conn := srv.DialHandshake(t)
	if got := servertest.Command(t, conn, "NIGMA 24"); got != "OK" {
		t.Fatalf("NIGMA reply %q", got)
	}
	n, err := conn.ReadInt32()
	if err != nil || n != 24 {
		t.Fatalf("key header %d %v", n, err)
	}
	key := make([]byte, n)
	if err := conn.ReadField(key); err != nil {
		t.Fatal(err)
	}
	// Fresh states from the new key: exactly what the official clients build.
	conn.SetCiphers(tfproto.NewCipher(key), tfproto.NewCipher(key))
	if got := servertest.Command(t, conn, "ECHO fresh state"); got != "fresh state" {
		t.Fatalf("echo under the new key: %q", got)
	}
	// And a second swap from there.
	if got := servertest.Command(t, conn, "NIGMA 8"); got != "OK" {
		t.Fatalf("second NIGMA reply %q", got)
	}
	var hdr [4]byte
	if err := conn.ReadField(hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[:]) != 8 {
		t.Fatalf("second key header %x %v", hdr, err)
	}
	key = make([]byte, 8)
	if err := conn.ReadField(key); err != nil {
		t.Fatal(err)
	}
	conn.SetCiphers(tfproto.NewCipher(key), tfproto.NewCipher(key))
	if got := servertest.Command(t, conn, "ECHO again"); got != "again" {
		t.Fatalf("echo under the second key: %q", got)
	}
}

func TestKeepalive(t *testing.T) {
	var mu sync.Mutex
	var last server.SockKeepalive
	probed := 0
	t.Cleanup(server.ProbeKeepalive(func(k server.SockKeepalive) {
		mu.Lock()
		last, probed = k, probed+1
		mu.Unlock()
	}))
	readBack := func() (server.SockKeepalive, int) {
		mu.Lock()
		defer mu.Unlock()
		return last, probed
	}
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	off := server.SockKeepalive{On: false}
	tests := []struct {
		args string
		code tfproto.Code
		want *server.SockKeepalive // nil: the socket is not touched
	}{
		{args: "1 10 | 5 | 3", want: &server.SockKeepalive{On: true, Idle: 10, Intvl: 5, Cnt: 3, UserTmo: 24999}},
		{args: "7 1 | 1 | 1", want: &server.SockKeepalive{On: true, Idle: 1, Intvl: 1, Cnt: 1, UserTmo: 1999}},
		{args: "1 3600 | 75 | 9", want: &server.SockKeepalive{On: true, Idle: 3600, Intvl: 75, Cnt: 9, UserTmo: 4274999}},
		{args: "0 0 | 0 | 0", want: &off},
		{args: "1 0 | 5 | 3", code: tfproto.CodeKeepalive, want: &off},
		{args: "1 10 | 0 | 3", code: tfproto.CodeKeepalive, want: &off},
		{args: "1 10 | 5 | 0", code: tfproto.CodeKeepalive, want: &off},
		{args: "1 -1 | 5 | 3", code: tfproto.CodeKeepalive, want: &off},
		{args: "1 32768 | 5 | 3", code: tfproto.CodeKeepalive, want: &off},
		{args: "1 2000000 | 2000000 | 2000", code: tfproto.CodeKeepalive, want: &off},
		{args: "", code: tfproto.CodeMissingParam},
		{args: "1", code: tfproto.CodeMissingParam},
		{args: "1 10 5 3", code: tfproto.CodeMissingParam},
		{args: "1 10 | 5", code: tfproto.CodeMissingParam},
		{args: "1 10 | 5 | 3 | 4", code: tfproto.CodeMissingParam},
		{args: "1 x | 5 | 3", code: tfproto.CodeMissingParam},
		{args: "1  10 | 5 | 3", code: tfproto.CodeMissingParam},
		{args: "1 10 | 5 | 3 ", code: tfproto.CodeMissingParam},
		{args: "1 99999999999 | 5 | 3", code: tfproto.CodeMissingParam},
		// The Python client's keepalive_command sends binary ints.
		{args: "\x00\x00\x00\x01 \x00\x00\x00\x0a | \x00\x00\x00\x05 | \x00\x00\x00\x03", code: tfproto.CodeMissingParam},
	}
	for _, tt := range tests {
		// Start each case from keepalive on, so a switch-off is visible.
		if _, err := c.Do(ctx, "KEEPALIVE 1 100 | 10 | 2"); err != nil {
			t.Fatal(err)
		}
		_, before := readBack()
		st, err := c.Do(ctx, "KEEPALIVE "+tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if tt.code == 0 && st.Kind != tfproto.KindOK || tt.code != 0 && st.Code != tt.code {
			t.Errorf("KEEPALIVE %q: %q, want code %d", tt.args, st.Raw, tt.code)
		}
		got, after := readBack()
		switch {
		case tt.want == nil && after != before:
			t.Errorf("KEEPALIVE %q touched the socket", tt.args)
		case tt.want != nil && after == before:
			t.Errorf("KEEPALIVE %q: socket not read back", tt.args)
		case tt.want != nil && tt.want.On && got != *tt.want:
			t.Errorf("KEEPALIVE %q: socket has %+v, want %+v", tt.args, got, *tt.want)
		case tt.want != nil && !tt.want.On && (got.On || got.UserTmo != 0):
			t.Errorf("KEEPALIVE %q: socket has %+v, want keepalive and user timeout off", tt.args, got)
		}
	}
	// The client method.
	if err := c.Keepalive(ctx, true, 20*time.Second, 4*time.Second, 5); err != nil {
		t.Fatal(err)
	}
	if got, _ := readBack(); got != (server.SockKeepalive{On: true, Idle: 20, Intvl: 4, Cnt: 5, UserTmo: 39999}) {
		t.Fatalf("client Keepalive: %+v", got)
	}
	if err := c.Keepalive(ctx, true, 0, time.Second, 1); failCode(err) != tfproto.CodeKeepalive {
		t.Fatalf("client Keepalive idle 0: %v", err)
	}
	if err := c.Keepalive(ctx, false, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
}

// KEEPALIVE is allowed before LOGIN in multi-user mode; the other transfer
// commands are not.
func TestKeepaliveBeforeLogin(t *testing.T) {
	srv := servertest.Start(t, func(cfg *config.Config) {
		cfg.UserDB = filepath.Join(t.TempDir(), "users")
		cfg.DefUser = ""
	})
	conn := srv.DialHandshake(t)
	if got := servertest.Command(t, conn, "KEEPALIVE 1 10 | 5 | 3"); got != "OK" {
		t.Fatalf("KEEPALIVE before LOGIN: %q", got)
	}
	for _, cmd := range []string{"SNDFILE 1 x", "SUP x", "SDOWN x", "FSIZE x", "FSIZELS x", "SHA256 x", "NIGMA 8"} {
		if got := servertest.Command(t, conn, cmd); got != tfproto.CodeBeforeLogin.Line() {
			t.Fatalf("%s before LOGIN: %q", cmd, got)
		}
	}
}
