package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/tfd-project/tfd/tfproto"
)

// byteConn is a net.Conn that reads from a fixed byte string.
type byteConn struct {
	net.Conn
	r *bytes.Reader
}

func (c byteConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// plainConn returns an unenciphered tfproto.Conn reading b (the framing is
// the same with a cipher; the cipher only changes the bytes).
func plainConn(b []byte) *tfproto.Conn { return tfproto.NewConn(byteConn{r: bytes.NewReader(b)}) }

func hdr(n int32) []byte { return tfproto.Int32Field(n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Request
		err  error
	}{
		{"leave", hdr(-1), Request{Kind: Leave, Header: -1}, nil},
		{"zero", hdr(0), Request{Kind: Ignore}, nil},
		{"other negative", hdr(-9), Request{Kind: Ignore, Header: -9}, nil},
		{"message", cat(hdr(2), []byte("id"), hdr(3), []byte("msg")), Request{Kind: Message, Header: 2, Dest: "id", Msg: []byte("msg")}, nil},
		{"empty message", cat(hdr(2), []byte("id"), hdr(0)), Request{Kind: Message, Header: 2, Dest: "id", Msg: []byte{}}, nil},
		{"negative message", cat(hdr(2), []byte("id"), hdr(-1)), Request{Kind: Invalid, Header: 2, Dest: "id"}, nil},
		{"dest too large", hdr(MaxMessage + 1), Request{}, tfproto.ErrFrameTooLarge},
		{"message too large", cat(hdr(1), []byte("i"), hdr(MaxMessage+1)), Request{}, tfproto.ErrFrameTooLarge},
		{"short header", []byte{0, 0}, Request{}, io.ErrUnexpectedEOF},
		{"short dest", cat(hdr(5), []byte("ab")), Request{}, io.ErrUnexpectedEOF},
		{"short message", cat(hdr(1), []byte("i"), hdr(4), []byte("ab")), Request{}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest(plainConn(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if got.Kind != tt.want.Kind || got.Header != tt.want.Header || got.Dest != tt.want.Dest || !bytes.Equal(got.Msg, tt.want.Msg) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadIdentity(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		id   string
		ok   bool
		err  error
	}{
		{"ok", cat(hdr(5), []byte("alice")), "alice", true, nil},
		{"empty", hdr(0), "", false, nil},
		{"too long", cat(hdr(MaxIdentity+1), make([]byte, MaxIdentity+1)), "", false, nil},
		{"longest", cat(hdr(MaxIdentity), bytes.Repeat([]byte("a"), MaxIdentity)), string(bytes.Repeat([]byte("a"), MaxIdentity)), true, nil},
		{"header too large", hdr(MaxMessage + 1), "", false, tfproto.ErrFrameTooLarge},
		{"negative", hdr(-1), "", false, tfproto.ErrNegativeFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := ReadIdentity(plainConn(tt.in))
			if id != tt.id || ok != tt.ok || !errors.Is(err, tt.err) {
				t.Fatalf("got %q %v %v, want %q %v %v", id, ok, err, tt.id, tt.ok, tt.err)
			}
		})
	}
}

// FuzzReadRequest runs the gateway loop's parser over arbitrary input, with
// and without a cipher: it must never panic, never return an oversize field,
// and always either make progress or stop with an error.
func FuzzReadRequest(f *testing.F) {
	f.Add(cat(hdr(-1)), false)
	f.Add(cat(hdr(0), hdr(-5), hdr(2), []byte("id"), hdr(3), []byte("msg"), hdr(-1)), false)
	f.Add(cat(hdr(2), []byte("id"), hdr(-3), hdr(1), []byte("x"), hdr(0)), true)
	f.Add(cat(hdr(MaxMessage+1)), false)
	f.Add(cat(hdr(1), []byte("i"), hdr(MaxMessage)), false)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, in []byte, cipher bool) {
		c := plainConn(in)
		if cipher {
			key := []byte("0123456789abcdef0123456789abcdef")
			c.SetCiphers(tfproto.NewCipher(key), tfproto.NewCipher(key))
		}
		for range len(in) + 1 {
			req, err := ReadRequest(c)
			if err != nil {
				return
			}
			if len(req.Dest) > MaxMessage || len(req.Msg) > MaxMessage {
				t.Fatalf("oversize field: dest %d, msg %d", len(req.Dest), len(req.Msg))
			}
			if req.Kind == Message && (req.Header <= 0 || int(req.Header) != len(req.Dest) || req.Msg == nil) {
				t.Fatalf("inconsistent request %+v", req)
			}
			if req.Kind == Leave {
				return
			}
		}
		t.Fatal("parser made no progress")
	})
}
