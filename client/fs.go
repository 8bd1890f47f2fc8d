package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tfd-project/tfd/tfproto"
)

// File-system commands (WIRE.md §5.3–§5.21, §5.34). A FAILED reply is returned
// as a *tfproto.Error.

// pair joins two arguments with the protocol's " | " separator.
func pair(a, b string) string { return a + " | " + b }

// okOnly runs a command whose success reply is a bare OK.
func (c *Client) okOnly(ctx context.Context, line string) error {
	_, err := c.command(ctx, line)
	return err
}

// Mkdir creates a directory (MKDIR).
func (c *Client) Mkdir(ctx context.Context, path string) error {
	return c.okOnly(ctx, "MKDIR "+path)
}

// Delete removes a file (DEL).
func (c *Client) Delete(ctx context.Context, path string) error {
	return c.okOnly(ctx, "DEL "+path)
}

// Rmdir removes a directory tree; secure directories inside it survive (RMDIR).
func (c *Client) Rmdir(ctx context.Context, path string) error {
	return c.okOnly(ctx, "RMDIR "+path)
}

// Copy copies the file src to the new file dst (COPY).
func (c *Client) Copy(ctx context.Context, src, dst string) error {
	return c.okOnly(ctx, "COPY "+pair(src, dst))
}

// Touch creates an empty file (TOUCH).
func (c *Client) Touch(ctx context.Context, path string) error {
	return c.okOnly(ctx, "TOUCH "+path)
}

// FileInfo is an FSTAT result.
type FileInfo struct {
	// Type is 'F' (regular file), 'D' (directory) or 'U' (anything else).
	Type  byte
	Size  uint64
	Atime time.Time
	Mtime time.Time
}

// Stat returns a path's type, size and times, following symlinks (FSTAT).
func (c *Client) Stat(ctx context.Context, path string) (FileInfo, error) {
	s, err := c.command(ctx, "FSTAT "+path)
	if err != nil {
		return FileInfo{}, err
	}
	f := strings.Split(s, " ")
	if len(f) != 4 || len(f[0]) != 1 {
		return FileInfo{}, fmt.Errorf("client: FSTAT reply %q", s)
	}
	size, err1 := strconv.ParseUint(f[1], 10, 64)
	at, err2 := strconv.ParseInt(f[2], 10, 64)
	mt, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return FileInfo{}, fmt.Errorf("client: FSTAT reply %q", s)
	}
	return FileInfo{Type: f[0][0], Size: size, Atime: time.Unix(at, 0), Mtime: time.Unix(mt, 0)}, nil
}

// Touchup sets a path's access and modification times to now (FUPD).
func (c *Client) Touchup(ctx context.Context, path string) error {
	return c.okOnly(ctx, "FUPD "+path)
}

// CopyDir copies the directory tree src to the new directory dst (CPDIR).
func (c *Client) CopyDir(ctx context.Context, src, dst string) error {
	return c.okOnly(ctx, "CPDIR "+pair(src, dst))
}

// Rename renames oldPath to newPath (RENAM).
func (c *Client) Rename(ctx context.Context, oldPath, newPath string) error {
	return c.okOnly(ctx, "RENAM "+pair(oldPath, newPath))
}

// Lock sets the session's lock-file name; "" turns locking off (LOCK).
func (c *Client) Lock(ctx context.Context, name string) error {
	return c.okOnly(ctx, "LOCK "+name)
}

// RemoveSecureDir removes path, secure directories included, if path/token
// exists (RMSECDIR).
func (c *Client) RemoveSecureDir(ctx context.Context, token, path string) error {
	return c.okOnly(ctx, "RMSECDIR "+pair(token, path))
}

// XCopy copies the file src as newname into every directory whose path ends
// with pattern (XCOPY).
func (c *Client) XCopy(ctx context.Context, newname, src, pattern string) error {
	return c.okOnly(ctx, "XCOPY "+newname+" "+pair(src, pattern))
}

// XCopyDir copies the directory src as newname into every directory whose
// path ends with pattern (XCPDIR).
func (c *Client) XCopyDir(ctx context.Context, newname, src, pattern string) error {
	return c.okOnly(ctx, "XCPDIR "+newname+" "+pair(src, pattern))
}

// XDelete removes every file below dir whose path ends with name (XDEL). dir
// cannot contain spaces.
func (c *Client) XDelete(ctx context.Context, dir, name string) error {
	return c.okOnly(ctx, "XDEL "+dir+" "+name)
}

// XRmdir removes every directory below dir whose path ends with name (XRMDIR).
// dir cannot contain spaces.
func (c *Client) XRmdir(ctx context.Context, dir, name string) error {
	return c.okOnly(ctx, "XRMDIR "+dir+" "+name)
}

// receiveStream sends line and runs the client side of the RCVFILE flow
// (WIRE.md §5.12), copying the payload to w. If w fails, it sends BREAK, reads
// the server's OK and returns w's error. It returns the bytes written.
func (c *Client) receiveStream(ctx context.Context, line string, w io.Writer) (int64, error) {
	var total int64
	// werr is w's error: the session stays in step (BREAK was sent), so it is
	// returned after the exchange and does not mark the session broken.
	var werr error
	err := c.Exchange(ctx, func(conn *tfproto.Conn) error {
		if err := conn.WriteFrameString(line); err != nil {
			return err
		}
		for {
			body, err := conn.ReadFrame(tfproto.MaxFrame)
			if err != nil {
				return err
			}
			st := tfproto.ParseStatus(body)
			switch st.Kind {
			case tfproto.KindCont:
				if werr == nil {
					payload := body[min(len(body), len(tfproto.Cont)+1):]
					n, err := w.Write(payload)
					total += int64(n)
					werr = err
				}
				next := tfproto.Cont
				if werr != nil {
					next = tfproto.Break
				}
				if err := conn.WriteFrameString(next); err != nil {
					return err
				}
			case tfproto.KindOK:
				return nil
			case tfproto.KindFailed, tfproto.KindUnknown:
				return st.Err()
			default:
				return fmt.Errorf("client: unexpected reply %q in %s", truncate(string(body), 60), firstWord(line))
			}
		}
	})
	if werr != nil {
		return total, fmt.Errorf("client: %s: %w", firstWord(line), werr)
	}
	return total, err
}

// ReceiveFile downloads path into w with the RCVFILE flow; with deleteAfter the
// server deletes the file after a complete transfer. It returns the number of
// bytes written to w.
func (c *Client) ReceiveFile(ctx context.Context, path string, w io.Writer, deleteAfter bool) (int64, error) {
	flag := "0"
	if deleteAfter {
		flag = "1"
	}
	return c.receiveStream(ctx, "RCVFILE "+flag+" "+path, w)
}

// EntryType is the type letter of a listing record.
type EntryType byte

// The listing record types.
const (
	EntryFile  EntryType = 'F'
	EntryDir   EntryType = 'D'
	EntryOther EntryType = 'U' // symlinks, FIFOs, sockets, devices
)

// Entry is one record of an LS or LSR listing.
type Entry struct {
	Type EntryType
	// Name is relative to the listed directory, without the trailing "/" of
	// directory records.
	Name string
}

// ListRaw returns the listing of path exactly as the server sent it (LS, or
// LSR when recursive).
func (c *Client) ListRaw(ctx context.Context, path string, recursive bool) ([]byte, error) {
	cmd := "LS "
	if recursive {
		cmd = "LSR "
	}
	var buf bytes.Buffer
	_, err := c.receiveStream(ctx, cmd+path, &buf)
	return buf.Bytes(), err
}

// List returns the entries of the directory path (LS).
func (c *Client) List(ctx context.Context, path string) ([]Entry, error) {
	raw, err := c.ListRaw(ctx, path, false)
	if err != nil {
		return nil, err
	}
	return ParseListing(raw)
}

// ListRecursive returns the entries of the tree below path in pre-order (LSR).
func (c *Client) ListRecursive(ctx context.Context, path string) ([]Entry, error) {
	raw, err := c.ListRaw(ctx, path, true)
	if err != nil {
		return nil, err
	}
	return ParseListing(raw)
}

// ParseListing parses LS/LSR records "T: name[/]\n" (WIRE.md §5.14).
func ParseListing(raw []byte) ([]Entry, error) {
	var out []Entry
	for len(raw) > 0 {
		line, rest, ok := bytes.Cut(raw, []byte{'\n'})
		if !ok {
			return out, fmt.Errorf("client: listing record %q has no newline", truncate(string(line), 60))
		}
		raw = rest
		if len(line) < 3 || line[1] != ':' || line[2] != ' ' {
			return out, fmt.Errorf("client: bad listing record %q", truncate(string(line), 60))
		}
		t := EntryType(line[0])
		name := string(line[3:])
		switch t {
		case EntryDir:
			var ok bool
			if name, ok = strings.CutSuffix(name, "/"); !ok {
				return out, fmt.Errorf("client: directory record %q without its \"/\"", truncate(string(line), 60))
			}
		case EntryFile, EntryOther:
		default:
			return out, fmt.Errorf("client: bad listing record %q", truncate(string(line), 60))
		}
		out = append(out, Entry{Type: t, Name: name})
	}
	return out, nil
}
