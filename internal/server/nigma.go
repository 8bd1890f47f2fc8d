package server

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/tfproto"
)

func init() {
	registerFamily(family{name: "nigma", commands: []command{
		{name: "NIGMA", run: cmdNigma},
	}})
}

// NIGMA key length bounds (WIRE.md §P row 8): at least 8 bytes (the seed), a
// multiple of 4, and at most 214, the longest session key RSA-OAEP can carry.
const (
	nigmaMinKey = 8
	nigmaMaxKey = 214
)

// nigmaKeyLen parses NIGMA's argument: a plain decimal number in range, or
// false.
func nigmaKeyLen(args string) (int, bool) {
	if args == "" || len(args) > 4 || strings.Trim(args, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(args)
	if err != nil || n < nigmaMinKey || n > nigmaMaxKey || n%4 != 0 {
		return 0, false
	}
	return n, true
}

// NIGMA keylen: swap the session key (WIRE.md §5.33, §P row 8). The new key
// comes from crypto/rand. Under the old state the server sends a framed OK, a
// raw hdr32(keylen) and the raw key, all in one write while holding the write
// lock, so nothing else interleaves; then both directions take the new key and
// re-derive the seed from its first 8 bytes, as the official clients do. The RX
// switch is safe because only this goroutine reads, and the client cannot send
// under the new key before it has the key.
//
// Decision: the argument must be plain decimal digits (no sign, spaces or
// trailing bytes); anything else, like a bad length, answers FAILED 46.
func cmdNigma(s *session, args string) error {
	n, ok := nigmaKeyLen(args)
	if !ok {
		return s.fail(tfproto.CodeSwapKey)
	}
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		s.log.Error("nigma key", "err", err)
		return s.fail(tfproto.CodeSwapKey)
	}
	var werr error
	s.conn.WithTx(func(tx *tfproto.Cipher) {
		fields := [][]byte{
			binary.BigEndian.AppendUint32(nil, uint32(len(tfproto.OK))),
			[]byte(tfproto.OK),
			binary.BigEndian.AppendUint32(nil, uint32(n)),
			append([]byte(nil), key...),
		}
		buf := make([]byte, 0, 4+2+4+n)
		for _, f := range fields {
			tx.Encrypt(f, f)
			buf = append(buf, f...)
		}
		if _, err := s.nc.Write(buf); err != nil {
			werr = fmt.Errorf("nigma: %w", err)
			return
		}
		tx.Reset(key)
	})
	if werr != nil {
		return werr
	}
	s.conn.RxCipher().Reset(key)
	s.result = metrics.ResultOK
	return nil
}
