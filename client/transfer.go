package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// Transfer results that are not FAILED lines: the raw SUP/SDOWN/FSIZE codes.
var (
	// ErrTransferFailed is the server's -1 answer to SUP or SDOWN: the path was
	// refused, could not be opened, read or written. The session stays usable.
	ErrTransferFailed = errors.New("client: the server reported a failed transfer")
	// ErrNoSize is FSIZE's -1: the path was refused or does not exist.
	ErrNoSize = errors.New("client: FSIZE: path refused or not found")
	// ErrNotRegular is FSIZE's -2: the path is not a regular file.
	ErrNotRegular = errors.New("client: FSIZE: not a regular file")
)

// FSIZE/FSIZELS raw values.
const (
	// SizeFailed is the FSIZELS entry for a refused or missing path.
	SizeFailed int64 = -1
	// SizeNotRegular is the FSIZELS entry for a path that is not a regular file.
	SizeNotRegular int64 = -2
	sizeListEnd    int64 = -3
)

// Largest chunks: SNDFILE data after "CONT " in one framed message, and SUP raw
// chunks (WIRE.md §1.3).
const (
	sndChunk = tfproto.MaxFrame - len("CONT ")
	supChunk = tfproto.MaxFrame
)

// readChunk fills buf from r as far as it can; err is nil, io.EOF (no more
// data, n may be > 0) or r's error.
func readChunk(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// SendFile uploads r to the server path remote with SNDFILE (WIRE.md §5.13):
// CONT chunks of up to 524283 bytes, then OK. Without overwrite an existing
// file answers FAILED 12. If r fails, the transfer is stopped with BREAK (the
// server discards the data) and r's error is returned. It returns the bytes
// sent.
func (c *Client) SendFile(ctx context.Context, remote string, r io.Reader, overwrite bool) (int64, error) {
	flag := "0"
	if overwrite {
		flag = "1"
	}
	var sent int64
	var srcErr error
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := expectCont(conn, "SNDFILE "+flag+" "+remote); err != nil {
			return err
		}
		bp := tfproto.GetBuffer()
		defer tfproto.PutBuffer(bp)
		buf := (*bp)[:tfproto.MaxFrame]
		copy(buf, "CONT ")
		for {
			n, rerr := readChunk(r, buf[5:])
			if n > 0 {
				if err := conn.WriteFrame(buf[:5+n]); err != nil {
					return err
				}
				sent += int64(n)
				if err := readReply(conn, "SNDFILE", tfproto.KindCont); err != nil {
					return err
				}
			}
			switch {
			case rerr == nil:
				continue
			case errors.Is(rerr, io.EOF):
				return expectOK(conn, tfproto.OK)
			}
			srcErr = rerr
			return expectOK(conn, tfproto.Break)
		}
	})
	if err == nil && srcErr != nil {
		err = fmt.Errorf("client: SNDFILE source: %w", srcErr)
	}
	return sent, err
}

// expectCont sends line and requires a CONT reply (FAILED → *Error).
func expectCont(conn *tfproto.Conn, line string) error {
	return expectReply(conn, line, tfproto.KindCont)
}

// expectOK sends line and requires an OK reply (FAILED → *Error).
func expectOK(conn *tfproto.Conn, line string) error {
	return expectReply(conn, line, tfproto.KindOK)
}

// expectReply sends line and requires a reply of kind want.
func expectReply(conn *tfproto.Conn, line string, want tfproto.Kind) error {
	if err := conn.WriteFrameString(line); err != nil {
		return err
	}
	return readReply(conn, firstWord(line), want)
}

// readReply reads a status line and requires kind want: FAILED → *Error, any
// other kind is an error naming the command.
func readReply(conn *tfproto.Conn, name string, want tfproto.Kind) error {
	st, err := readStatus(conn)
	if err != nil {
		return err
	}
	if e := st.Err(); e != nil {
		return e
	}
	if st.Kind != want {
		return fmt.Errorf("client: %s: unexpected reply %q", name, truncate(string(st.Raw), 60))
	}
	return nil
}

func readStatus(conn *tfproto.Conn) (tfproto.Status, error) {
	body, err := conn.ReadFrame(tfproto.MaxFrame)
	if err != nil {
		return tfproto.Status{}, err
	}
	return tfproto.ParseStatus(append([]byte(nil), body...)), nil
}

// Upload sends r to the server path remote with SUP (WIRE.md §5.38): raw chunks
// of up to 524288 bytes, then 0; an existing file is replaced. If r fails, the
// upload is cancelled (-1: the server discards the data) and r's error is
// returned. A server-side failure is ErrTransferFailed. It returns the bytes
// sent.
func (c *Client) Upload(ctx context.Context, remote string, r io.Reader) (int64, error) {
	var sent int64
	var srcErr error
	failed := false
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString("SUP " + remote); err != nil {
			return err
		}
		bp := tfproto.GetBuffer()
		defer tfproto.PutBuffer(bp)
		buf := (*bp)[:supChunk]
		for {
			n, rerr := readChunk(r, buf)
			if n > 0 {
				if err := conn.WriteFields(tfproto.Int32Field(int32(n)), buf[:n]); err != nil {
					return err
				}
				sent += int64(n)
			}
			switch {
			case rerr == nil:
				continue
			case errors.Is(rerr, io.EOF):
				if err := conn.WriteInt32(0); err != nil {
					return err
				}
				v, err := conn.ReadInt32()
				if err != nil {
					return err
				}
				switch v {
				case 0:
				case -1:
					failed = true
				default:
					return fmt.Errorf("client: SUP: unexpected result %d", v)
				}
				return nil
			}
			srcErr = rerr
			return conn.WriteInt32(-1)
		}
	})
	switch {
	case err != nil:
	case srcErr != nil:
		err = fmt.Errorf("client: SUP source: %w", srcErr)
	case failed:
		err = ErrTransferFailed
	}
	return sent, err
}

// Download writes the server file remote to w with SDOWN (WIRE.md §5.37) and
// returns the bytes received. A server-side failure is ErrTransferFailed. If w
// fails, the rest of the stream is still read (SDOWN cannot be stopped) and w's
// error is returned.
func (c *Client) Download(ctx context.Context, remote string, w io.Writer) (int64, error) {
	var got int64
	var dstErr error
	failed := false
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString("SDOWN " + remote); err != nil {
			return err
		}
		for {
			n, err := conn.ReadInt32()
			if err != nil {
				return err
			}
			switch {
			case n == 0:
				return nil
			case n < 0:
				failed = true
				return nil
			case n > tfproto.MaxFrame:
				return fmt.Errorf("client: SDOWN: chunk of %d bytes: %w", n, tfproto.ErrFrameTooLarge)
			}
			data, err := conn.ReadBody(int(n))
			if err != nil {
				return err
			}
			got += int64(n)
			if dstErr == nil {
				_, dstErr = w.Write(data)
			}
		}
	})
	switch {
	case err != nil:
	case dstErr != nil:
		err = fmt.Errorf("client: SDOWN destination: %w", dstErr)
	case failed:
		err = ErrTransferFailed
	}
	return got, err
}

// FileSize returns the size of the regular file at path (FSIZE, WIRE.md
// §5.39); ErrNoSize or ErrNotRegular otherwise.
func (c *Client) FileSize(ctx context.Context, path string) (int64, error) {
	var v int64
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString("FSIZE " + path); err != nil {
			return err
		}
		var err error
		v, err = conn.ReadInt64()
		return err
	})
	switch {
	case err != nil:
		return 0, err
	case v == SizeFailed:
		return 0, ErrNoSize
	case v == SizeNotRegular:
		return 0, ErrNotRegular
	case v < 0:
		return 0, fmt.Errorf("client: FSIZE: unexpected value %d", v)
	}
	return v, nil
}

// FileSizes runs FSIZELS on the server list file listPath (one path per line)
// and returns one entry per line: the size, SizeFailed or SizeNotRegular. A
// list file that cannot be read gives an empty result.
func (c *Client) FileSizes(ctx context.Context, listPath string) ([]int64, error) {
	var out []int64
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString("FSIZELS " + listPath); err != nil {
			return err
		}
		for {
			v, err := conn.ReadInt64()
			if err != nil {
				return err
			}
			if v == sizeListEnd {
				return nil
			}
			if v < SizeNotRegular {
				return fmt.Errorf("client: FSIZELS: unexpected value %d", v)
			}
			out = append(out, v)
		}
	})
	return out, err
}

// SHA256 returns the SHA-256 digest of the server file at path (WIRE.md §5.32).
func (c *Client) SHA256(ctx context.Context, path string) ([32]byte, error) {
	var sum [32]byte
	s, err := c.command(ctx, "SHA256 "+path)
	if err != nil {
		return sum, err
	}
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 64 {
		return sum, fmt.Errorf("client: SHA256 reply %q is not 0x and 64 hex digits", truncate(s, 80))
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("client: SHA256 reply: %w", err)
	}
	return sum, nil
}

// Nigma asks the server for a new session key of keylen bytes (NIGMA, WIRE.md
// §5.33). The server sends it under the old state; then both directions of
// both sides switch to the new key and re-derive the seed from its first 8
// bytes (§P row 8). It returns the new key.
func (c *Client) Nigma(ctx context.Context, keylen int) ([]byte, error) {
	var key []byte
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := expectOK(conn, "NIGMA "+strconv.Itoa(keylen)); err != nil {
			return err
		}
		n, err := conn.ReadInt32()
		if err != nil {
			return err
		}
		if n < 8 || n > tfproto.MaxFrame {
			return fmt.Errorf("client: NIGMA: key length %d", n)
		}
		key = make([]byte, n)
		if err := conn.ReadField(key); err != nil {
			return err
		}
		conn.WithTx(func(tx *tfproto.Cipher) { tx.Reset(key) })
		conn.RxCipher().Reset(key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

// Keepalive sets the server's TCP keepalive for this connection (KEEPALIVE,
// WIRE.md §5.22): on with the idle time, probe interval (whole seconds) and
// probe count, or off. The server refuses values the kernel rejects (an idle
// time under one second) with FAILED 32 and switches keepalive off.
func (c *Client) Keepalive(ctx context.Context, on bool, idle, interval time.Duration, count int) error {
	v := 0
	if on {
		v = 1
	}
	_, err := c.command(ctx, fmt.Sprintf("KEEPALIVE %d %d | %d | %d", v, int64(idle/time.Second), int64(interval/time.Second), count))
	return err
}
