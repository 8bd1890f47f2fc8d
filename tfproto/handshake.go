package tfproto

import (
	"crypto/rsa"
	"encoding/binary"
	"fmt"
)

// ClientHandshake runs the client side of the handshake (WIRE.md §2) on c: the
// protocol version, the RSA-wrapped session key and the hash. On success the
// connection is enciphered with states derived from key. A FAILED answer comes
// back as *Error.
func ClientHandshake(c *Conn, proto, hash string, pub *rsa.PublicKey, key []byte) error {
	if err := c.WriteFrameString(proto); err != nil {
		return fmt.Errorf("send protocol version: %w", err)
	}
	if err := expectOK(c, "protocol version"); err != nil {
		return err
	}
	ct, err := EncryptSessionKey(pub, key)
	if err != nil {
		return err
	}
	if err := c.WriteFrame(ct); err != nil {
		return fmt.Errorf("send session key: %w", err)
	}
	if err := expectOK(c, "session key"); err != nil {
		return err
	}
	// The client's TX pairs with the server's RX and vice versa; both start from
	// the same key.
	c.SetCiphers(NewCipher(key), NewCipher(key))
	if err := c.WriteFrameString(hash); err != nil {
		return fmt.Errorf("send hash: %w", err)
	}
	return expectOK(c, "hash")
}

func expectOK(c *Conn, step string) error {
	body, err := c.ReadFrame(MaxFrame)
	if err != nil {
		return fmt.Errorf("handshake %s: %w", step, err)
	}
	st := ParseStatus(body)
	if st.Kind == KindOK {
		return nil
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("handshake %s: %w", step, err)
	}
	return fmt.Errorf("handshake %s: unexpected reply %q", step, body)
}

// PlainFrame returns hdr32(len(body)) followed by body, unenciphered: the
// handshake's first steps, and raw test input.
func PlainFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}
