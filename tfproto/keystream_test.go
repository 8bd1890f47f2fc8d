package tfproto

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func testKey(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

// TestKeystreamMatchesCipher checks that Keystream+Apply gives exactly the bytes
// of Encrypt/Decrypt, call after call, for several key lengths (including the
// WIRE.md §3.6 V4 degenerate key) and call lengths around the 8-byte lanes.
func TestKeystreamMatchesCipher(t *testing.T) {
	keys := [][]byte{testKey(16, 1), testKey(17, 2), testKey(214, 3), unhex(t, "00000000000000000102030405060708")}
	for _, key := range keys {
		ref, ks := NewCipher(key), NewCipher(key)
		r := rand.New(rand.NewPCG(uint64(len(key)), 9))
		for call := 0; call < 200; call++ {
			n := r.IntN(300)
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			want := make([]byte, n)
			if call%2 == 0 {
				ref.Encrypt(want, src)
			} else {
				ref.Decrypt(want, src)
			}
			x, a := make([]byte, n), make([]byte, n)
			ks.Keystream(x, a)
			got := make([]byte, n)
			if call%2 == 0 {
				ApplyEncrypt(got, src, x, a)
			} else {
				ApplyDecrypt(got, src, x, a)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("key len %d call %d (%d bytes): keystream output differs", len(key), call, n)
			}
			if ks.Seed() != ref.Seed() || !bytes.Equal(ks.Key(), ref.Key()) {
				t.Fatalf("key len %d call %d: state differs", len(key), call)
			}
		}
	}
}

// TestApplyLanes checks the SWAR byte lanes against the scalar formulas for
// every pair of byte values.
func TestApplyLanes(t *testing.T) {
	src, x, a := make([]byte, 65536), make([]byte, 65536), make([]byte, 65536)
	for i := range src {
		src[i], a[i], x[i] = byte(i), byte(i>>8), byte(i*7)
	}
	enc, dec := make([]byte, len(src)), make([]byte, len(src))
	ApplyEncrypt(enc, src, x, a)
	ApplyDecrypt(dec, src, x, a)
	for i := range src {
		if enc[i] != (src[i]^x[i])+a[i] || dec[i] != (src[i]-a[i])^x[i] {
			t.Fatalf("lane mismatch at %d", i)
		}
	}
}

// TestKeyPipeMatchesCipher drives a KeyPipe with call lengths that follow its
// pattern, break it (short last chunk, codes, learned sizes) and process calls
// in uneven pieces, and compares with Encrypt call by call and the final state.
func TestKeyPipeMatchesCipher(t *testing.T) {
	const big = 3*KeySegment + 5
	tests := []struct {
		name    string
		pattern []int
		calls   []int
	}{
		{"matching", []int{8, 1000}, []int{8, 1000, 8, 1000, 8, 1000, 8}},
		{"short tail", []int{8, big}, []int{8, big, 8, big, 8, 77, 8, 8}},
		{"learned", []int{8, big}, []int{8, 500, 8, 500, 8, 500, 8, 500, 8, 3, 8}},
		{"codes only", []int{8, big}, []int{8, 8, 8}},
		{"zero-length calls", []int{8, 64}, []int{8, 0, 64, 8, 64, 0, 8}},
		{"every call wrong", []int{5}, []int{1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	}
	for _, tt := range tests {
		for _, enc := range []bool{true, false} {
			for _, ahead := range []bool{true, false} {
				key := testKey(33, 7)
				ref, pc := NewCipher(key), NewCipher(key)
				p := NewKeyPipe(pc, ahead, tt.pattern...)
				r := rand.New(rand.NewPCG(5, 5))
				for ci, n := range tt.calls {
					src := make([]byte, n)
					for i := range src {
						src[i] = byte(r.Uint32())
					}
					want := make([]byte, n)
					if enc {
						ref.Encrypt(want, src)
					} else {
						ref.Decrypt(want, src)
					}
					got := make([]byte, n)
					p.Begin(n)
					for off := 0; off < n; {
						m := min(n-off, 1+r.IntN(KeySegment/3))
						if enc {
							p.Encrypt(got[off:off+m], src[off:off+m])
						} else {
							p.Decrypt(got[off:off+m], src[off:off+m])
						}
						off += m
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s enc=%v ahead=%v: call %d (%d bytes) differs", tt.name, enc, ahead, ci, n)
					}
				}
				p.Close()
				if pc.Seed() != ref.Seed() || !bytes.Equal(pc.Key(), ref.Key()) {
					t.Fatalf("%s enc=%v ahead=%v: state after Close differs", tt.name, enc, ahead)
				}
				// The cipher goes on in step after the pipe.
				a, b := make([]byte, 40), make([]byte, 40)
				ref.Encrypt(a, a)
				pc.Encrypt(b, b)
				if !bytes.Equal(a, b) {
					t.Fatalf("%s: out of step after Close", tt.name)
				}
			}
		}
	}
}

// BenchmarkKeystream measures the producer side alone: the seed recurrence
// writing two keystream bytes per position.
func BenchmarkKeystream(b *testing.B) {
	c := NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	x, a := make([]byte, 512*1024), make([]byte, 512*1024)
	b.SetBytes(int64(len(x)))
	for b.Loop() {
		c.Keystream(x, a)
	}
}

// BenchmarkApply measures the consumer side alone: combining data with a
// precomputed keystream.
func BenchmarkApply(b *testing.B) {
	buf, x, a := make([]byte, 512*1024), make([]byte, 512*1024), make([]byte, 512*1024)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		ApplyDecrypt(buf, buf, x, a)
	}
}

// BenchmarkKeyPipe measures one direction through a KeyPipe with the producer
// running ahead (the transfer data path) and synchronously (for comparison).
func BenchmarkKeyPipe(b *testing.B) {
	const chunk = 1 << 20
	for _, ahead := range []bool{false, true} {
		name := "sync"
		if ahead {
			name = "ahead"
		}
		b.Run(name, func(b *testing.B) {
			p := NewKeyPipe(NewCipher([]byte("0123456789abcdef0123456789abcdef")), ahead, 8, chunk)
			hdr, buf := make([]byte, 8), make([]byte, chunk)
			b.SetBytes(chunk)
			for b.Loop() {
				p.Begin(8)
				p.Encrypt(hdr, hdr)
				p.Begin(chunk)
				for off := 0; off < chunk; off += 128 * 1024 {
					p.Encrypt(buf[off:off+128*1024], buf[off:off+128*1024])
				}
			}
			p.Close()
		})
	}
}
