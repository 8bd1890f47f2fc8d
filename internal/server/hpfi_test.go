package server_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/servertest"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readRoot(t *testing.T, srv *servertest.Server, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.Root, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
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
// and buffer sizes below, at and above the piece size, on one session.
func TestHPFRoundTrip(t *testing.T) {
	srv := servertest.Start(t)
	c := srv.Dial(t)
	ctx := servertest.Context(t)
	sizes := []int{0, 1, 7, 4096, 512*1024 - 3, 512 * 1024, 2*1024*1024 + 11}
	bufs := []int64{1000, 512 * 1024, 3 << 20}
	for i, size := range sizes {
		for j, bufsz := range bufs {
			data := randomBytes(size, uint64(i*10+j))
			for _, can := range []bool{false, true} {
				name := "f" + string(rune('a'+i)) + string(rune('a'+j))
				var err error
				var n int64
				if can {
					n, err = c.PutFileCan(ctx, "/"+name, bytes.NewReader(data), 0, 3, client.WithBufferSize(bufsz))
				} else {
					n, err = c.PutFile(ctx, name, bytes.NewReader(data), 0, client.WithBufferSize(bufsz))
				}
				if err != nil || n != int64(size) {
					t.Fatalf("put %d bytes buf %d can %v: n=%d err=%v", size, bufsz, can, n, err)
				}
				if got := readRoot(t, srv, name); !bytes.Equal(got, data) {
					t.Fatalf("put %d bytes buf %d can %v: file differs (%d bytes)", size, bufsz, can, len(got))
				}
				var out bytes.Buffer
				if can {
					n, err = c.GetFileCan(ctx, name, &out, 0, 2, client.WithBufferSize(bufsz))
				} else {
					n, err = c.GetFile(ctx, name, &out, 0, client.WithBufferSize(bufsz))
				}
				if err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("get %d bytes buf %d can %v: n=%d err=%v equal=%v", size, bufsz, can, n, err, bytes.Equal(out.Bytes(), data))
				}
			}
		}
	}
	alive(t, c)
}
