// Package tfproto is the TFProtocol 2.4.1 wire layer shared by the tfd server and
// the Go client: the stream cipher, the framed connection with separate TX and RX
// cipher states, the RSA session-key exchange, status lines and the error-code
// table, and the High-Performance File Interface codes.
//
// The byte-level rules follow ../shared/WIRE.md; where that document and the spec
// disagree, WIRE.md §P decides.
package tfproto

import "encoding/binary"

// Cipher is one direction's state of the TFProtocol stream cipher (WIRE.md §3).
//
// The key index restarts at 0 on every call to Encrypt or Decrypt and wraps at the
// key length, so the boundaries of the calls are part of the wire format: one call
// per protocol field. Only the seed and the mutated key bytes carry over between
// calls. A Cipher is not safe for concurrent use; a connection keeps one per
// direction, each behind its own lock.
type Cipher struct {
	key  []byte
	seed uint64
}

// NewCipher returns a cipher state initialised from key: a private copy of the key
// and a seed equal to its first 8 bytes read little-endian. The key must be at
// least 8 bytes long.
func NewCipher(key []byte) *Cipher {
	k := append([]byte(nil), key...)
	return &Cipher{key: k, seed: binary.LittleEndian.Uint64(k)}
}

// Clone returns an independent copy of the state.
func (c *Cipher) Clone() *Cipher {
	return &Cipher{key: append([]byte(nil), c.key...), seed: c.seed}
}

// Seed returns the current seed.
func (c *Cipher) Seed() uint64 { return c.seed }

// Key returns a copy of the current (mutated) key bytes.
func (c *Cipher) Key() []byte { return append([]byte(nil), c.key...) }

// Rekey replaces the key bytes (and so the key length) and keeps the seed, as the
// reference server does after NIGMA (WIRE.md §3.5).
func (c *Cipher) Rekey(key []byte) {
	c.key = append(c.key[:0:0], key...)
}

// Reset replaces the key and re-derives the seed from its first 8 bytes, as both
// official clients do after NIGMA (WIRE.md §P row 8).
func (c *Cipher) Reset(key []byte) {
	c.key = append(c.key[:0:0], key...)
	c.seed = binary.LittleEndian.Uint64(c.key)
}

// Encrypt enciphers src into dst as one cipher call. dst and src may be the same
// slice; dst must be at least len(src) long.
func (c *Cipher) Encrypt(dst, src []byte) { c.encryptAt(dst, src, 0) }

// Decrypt deciphers src into dst as one cipher call. dst and src may be the same
// slice; dst must be at least len(src) long.
func (c *Cipher) Decrypt(dst, src []byte) { c.decryptAt(dst, src, 0) }
