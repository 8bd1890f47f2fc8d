package tfproto

// Raw access for data paths that encipher with a KeyPipe (HPFI transfers):
// the caller owns one direction's cipher state for the duration and moves the
// already-enciphered bytes itself.

// ReadRaw reads exactly len(b) bytes without deciphering them. Decipher them
// with a KeyPipe over RxCipher, as one call per protocol field.
func (c *Conn) ReadRaw(b []byte) error {
	return c.readFull(b)
}

// WriteRaw sends b unchanged (already enciphered by the caller) in one write,
// under the write lock.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flush(b)
}

// TxCipher returns the TX state. Only a goroutine that is the connection's sole
// writer may use it, and only between its own writes (a KeyPipe over it must be
// closed before any other Write call).
func (c *Conn) TxCipher() *Cipher {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.tx
}
