package tfproto

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Session-key limits (WIRE.md §2): at least 16 bytes, at most what fits one
// RSA-2048 OAEP-SHA1 block.
const (
	MinSessionKey = 16
	MaxSessionKey = 2048/8 - 42
	// RSACiphertextLen is the exact size of the RSA step's body.
	RSACiphertextLen = 256
)

// GenerateKey returns a new RSA-2048 private key.
func GenerateKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	return k, nil
}

// MarshalPrivateKeyPEM encodes k as a PKCS#1 "RSA PRIVATE KEY" PEM block, the
// form the reference server's config holds.
func MarshalPrivateKeyPEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// MarshalPublicKeyPEM encodes k as a PKIX "PUBLIC KEY" PEM block, the form the
// official clients load.
func MarshalPublicKeyPEM(k *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM reads an RSA private key in PKCS#1 or PKCS#8 PEM form.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key is not RSA")
	}
	return rk, nil
}

// ParsePublicKeyPEM reads an RSA public key in PKIX ("PUBLIC KEY") or PKCS#1
// ("RSA PUBLIC KEY") PEM form.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in public key")
	}
	if k, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("public key is not RSA")
	}
	return rk, nil
}

// EncryptSessionKey enciphers a session key with OAEP, SHA-1 and MGF1-SHA-1, empty
// label: what the reference server's RSA_PKCS1_OAEP_PADDING expects.
func EncryptSessionKey(pub *rsa.PublicKey, key []byte) ([]byte, error) {
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil)
	if err != nil {
		return nil, fmt.Errorf("rsa encrypt session key: %w", err)
	}
	return ct, nil
}

// ErrBadSessionKey is returned for an RSA block that does not decrypt to a usable
// session key.
var ErrBadSessionKey = errors.New("tfproto: bad session key")

// DecryptSessionKey deciphers the RSA step's body. The body must be exactly 256
// bytes and the key 16..214 bytes whose first 8 bytes are not all zero (such a
// key turns the stream cipher into plaintext, WIRE.md §3.3).
func DecryptSessionKey(priv *rsa.PrivateKey, body []byte) ([]byte, error) {
	if len(body) != RSACiphertextLen {
		return nil, fmt.Errorf("%w: RSA body is %d bytes, want 256", ErrBadSessionKey, len(body))
	}
	key, err := rsa.DecryptOAEP(sha1.New(), nil, priv, body, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSessionKey, err)
	}
	if len(key) < MinSessionKey || len(key) > MaxSessionKey {
		return nil, fmt.Errorf("%w: length %d", ErrBadSessionKey, len(key))
	}
	if isZero(key[:8]) {
		return nil, fmt.Errorf("%w: degenerate key (first 8 bytes zero)", ErrBadSessionKey)
	}
	return key, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// NewSessionKey returns n random bytes from r (crypto/rand when r is nil) whose
// first 8 bytes are not all zero.
func NewSessionKey(r io.Reader, n int) ([]byte, error) {
	if n < MinSessionKey || n > MaxSessionKey {
		return nil, fmt.Errorf("session key length %d outside %d..%d", n, MinSessionKey, MaxSessionKey)
	}
	if r == nil {
		r = rand.Reader
	}
	key := make([]byte, n)
	for {
		if _, err := io.ReadFull(r, key); err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
		if !isZero(key[:8]) {
			return key, nil
		}
	}
}
