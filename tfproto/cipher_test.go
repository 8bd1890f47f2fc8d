package tfproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCipherVectors checks the WIRE.md §3.6 vectors: each row enciphers its calls
// in order on a fresh state and compares the ciphertext of every call.
func TestCipherVectors(t *testing.T) {
	seq := func(n int, base byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = base + byte(i)
		}
		return b
	}
	tests := []struct {
		name  string
		key   []byte
		calls [][]byte
		want  []string
	}{
		{"V1", seq(16, 0), [][]byte{{0, 0, 0, 2}, []byte("OK")}, []string{"0733bf9c", "0848"}},
		{"V2", []byte("0123456789abcdef"), [][]byte{[]byte("ECHO hello")}, []string{"accda69463ee3b08c0dc"}},
		{"V2b", []byte("0123456789abcdef"), [][]byte{{0, 0, 0, 10}, []byte("ECHO hello")}, []string{"678c5e51", "6f17d91680e3b4969769"}},
		{"V2c", []byte("0123456789abcdef"), [][]byte{append([]byte{0, 0, 0, 10}, "ECHO hello"...)}, []string{"678c5e51c007662584d76549521e"}},
		{"V3", seq(20, 0xa0), [][]byte{seq(48, 0)}, []string{"477594d1acdb9bcc5fb23885c5193407e8bffaf0cd22a656bd075818e5b4d0801e4477098a40ce6e36f645cc389d8555"}},
		{"V4", unhex(t, "00000000000000000102030405060708"), [][]byte{bytes.Repeat([]byte("A"), 40)},
			[]string{"41414141414141414043424544474649" + hex.EncodeToString(bytes.Repeat([]byte("A"), 24))}},
		{"V5", unhex(t, "ffeeddccbbaa99887766554433221100"), [][]byte{{0, 0, 0, 2}, []byte("OK")}, []string{"87d19d84", "de83"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, dec := NewCipher(tt.key), NewCipher(tt.key)
			for i, call := range tt.calls {
				ct := make([]byte, len(call))
				enc.Encrypt(ct, call)
				if got := hex.EncodeToString(ct); got != tt.want[i] {
					t.Fatalf("call %d: got %s want %s", i, got, tt.want[i])
				}
				pt := make([]byte, len(ct))
				dec.Decrypt(pt, ct)
				if !bytes.Equal(pt, call) {
					t.Fatalf("call %d: decrypt gave %x want %x", i, pt, call)
				}
			}
		})
	}
}

func TestCipherV1State(t *testing.T) {
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(i)
	}
	c := NewCipher(key)
	if c.Seed() != 0x0706050403020100 {
		t.Fatalf("seed0 %#x", c.Seed())
	}
	c.Encrypt(make([]byte, 4), []byte{0, 0, 0, 2})
	c.Encrypt(make([]byte, 2), []byte("OK"))
	if c.Seed() != 0xdaf28638ba5da2f8 {
		t.Fatalf("seed after V1 %#x", c.Seed())
	}
	if got := hex.EncodeToString(c.Key()); got != "f7f884180405060708090a0b0c0d0e0f" {
		t.Fatalf("key after V1 %s", got)
	}
}

func TestCipherV5NegativeSeed(t *testing.T) {
	c := NewCipher(unhex(t, "ffeeddccbbaa99887766554433221100"))
	if int64(c.Seed()) != -8603657889541918977 {
		t.Fatalf("seed0 %d", int64(c.Seed()))
	}
}

func TestCipherDegenerateStaysZero(t *testing.T) {
	c := NewCipher(unhex(t, "00000000000000000102030405060708"))
	c.Encrypt(make([]byte, 40), bytes.Repeat([]byte("A"), 40))
	if c.Seed() != 0 {
		t.Fatalf("seed %#x, want 0", c.Seed())
	}
}

// TestRekeyKeepsSeed: NIGMA replaces key bytes and length but keeps the seed;
// Reset re-derives the seed as the official clients do.
func TestRekeyKeepsSeed(t *testing.T) {
	c := NewCipher([]byte("0123456789abcdef"))
	c.Encrypt(make([]byte, 10), []byte("ECHO hello"))
	seed := c.Seed()
	nk := []byte("ABCDEFGHIJKL")
	c.Rekey(nk)
	if c.Seed() != seed || !bytes.Equal(c.Key(), nk) {
		t.Fatal("Rekey changed the seed or did not set the key")
	}
	c.Reset(nk)
	if c.Seed() != binary.LittleEndian.Uint64(nk) {
		t.Fatal("Reset did not re-derive the seed")
	}
}

// BenchmarkCipher measures one direction of the cipher: the per-byte seed
// recurrence is the physical limit of every transfer.
func BenchmarkCipher(b *testing.B) {
	for _, size := range []int{16, 4096, 512 * 1024} {
		b.Run(byteSize(size), func(b *testing.B) {
			c := NewCipher([]byte("0123456789abcdef0123456789abcdef"))
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				c.Encrypt(buf, buf)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
