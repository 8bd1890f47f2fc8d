package tfproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// pair returns two Conns joined by an in-memory pipe with matching cipher states.
func pair(t *testing.T, key []byte) (*Conn, *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	ca, cb := NewConn(a), NewConn(b)
	if key != nil {
		ca.SetCiphers(NewCipher(key), NewCipher(key))
		cb.SetCiphers(NewCipher(key), NewCipher(key))
	}
	return ca, cb
}

func TestFrameRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef")
	ca, cb := pair(t, key)
	bodies := [][]byte{[]byte("ECHO hello"), {}, bytes.Repeat([]byte{7}, 5000), bytes.Repeat([]byte{9}, MaxFrame)}
	go func() {
		for _, b := range bodies {
			if err := ca.WriteFrame(b); err != nil {
				t.Error(err)
				return
			}
		}
		ca.WriteFields(Int32Field(-1), Int64Field(-127), []byte("xyz"))
	}()
	for i, want := range bodies {
		got, err := cb.ReadFrame(0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if v, err := cb.ReadInt32(); err != nil || v != -1 {
		t.Fatalf("int32 %d %v", v, err)
	}
	if v, err := cb.ReadInt64(); err != nil || v != -127 {
		t.Fatalf("int64 %d %v", v, err)
	}
	b := make([]byte, 3)
	if err := cb.ReadField(b); err != nil || string(b) != "xyz" {
		t.Fatalf("field %q %v", b, err)
	}
}

// TestFrameWireBytes: the framed "ECHO hello" leaves exactly as WIRE.md V2b.
func TestFrameWireBytes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a)
	c.SetCiphers(NewCipher([]byte("0123456789abcdef")), NewCipher([]byte("0123456789abcdef")))
	go c.WriteFrameString("ECHO hello")
	got := make([]byte, 14)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "678c5e516f17d91680e3b4969769"); !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
}

func TestReadFrameLimits(t *testing.T) {
	tests := []struct {
		name string
		hdr  int32
		want error
	}{
		{"negative", -1, ErrNegativeFrame},
		{"min int", -2147483648, ErrNegativeFrame},
		{"oversize", MaxFrame + 1, ErrFrameTooLarge},
		{"700KiB", 700 * 1024, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(fakeConn(binary.BigEndian.AppendUint32(nil, uint32(tt.hdr))))
			if _, err := c.ReadFrame(0); !errors.Is(err, tt.want) {
				t.Fatalf("got %v want %v", err, tt.want)
			}
		})
	}
	c := NewConn(fakeConn(binary.BigEndian.AppendUint32(nil, 10)))
	if _, err := c.ReadFrame(5); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("max 5: %v", err)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader, ciphered and plain:
// it may fail but never panic, and never returns a body over the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'E', 'N', 'D'}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, true)
	f.Add([]byte{0, 8, 0, 1}, false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x'}, true)
	f.Fuzz(func(t *testing.T, data []byte, enc bool) {
		c := NewConn(fakeConn(data))
		if enc {
			c.SetCiphers(NewCipher([]byte("0123456789abcdef")), NewCipher([]byte("0123456789abcdef")))
		}
		for {
			b, err := c.ReadFrame(0)
			if err != nil {
				return
			}
			if len(b) > MaxFrame {
				t.Fatalf("body of %d bytes", len(b))
			}
		}
	})
}

// fakeConn is a net.Conn that reads from a fixed byte slice and discards writes.
type memConn struct {
	net.Conn
	r *bytes.Reader
}

func fakeConn(b []byte) net.Conn               { return &memConn{r: bytes.NewReader(b)} }
func (m *memConn) Read(p []byte) (int, error)  { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error) { return len(p), nil }
func (m *memConn) Close() error                { return nil }
