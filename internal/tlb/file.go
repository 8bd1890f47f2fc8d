package tlb

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// FilePool is the single-node pool: the tuples of the reference-format tlb file
// (config key "tlb"), one per line.
//
// The file is read by Reload, not on every TLB command: after LOGIN a session's
// thread carries the user's file-system identity, which may not be allowed to
// read the daemon's own files, and a TLB answer must not cost a file read. Call
// Reload again (for example on SIGHUP) to pick up an edited file; pickers that
// already exist see the new tuples from their next call on.
//
// Line format. The reference returns each line verbatim (WIRE.md §5.36), and a
// spec line is "4 ip;port" or "6 ip;port". The reference README documents a
// second syntax, "ipv4: 127.0.0.1" / "ipv6: ::1", which the reference would hand
// out unchanged although no client can use it. FilePool translates such a line
// to the spec form the clients parse, "4 127.0.0.1;PORT" / "6 ::1;PORT", PORT
// being the pool's port (the server's own port: the pool's servers share one
// configuration) unless the line gives one after ";". Every other line is
// returned verbatim, never validated. Lines are stripped of "\n" and a trailing
// "\r"; blank lines, lines starting with "#" and lines longer than MaxTupleLen
// are skipped (no tuple can look like that, so nothing a reference pool file
// means is lost).
type FilePool struct {
	path  string
	port  string
	lines atomic.Pointer[[]string]
}

// NewFilePool returns an empty pool for the file at path; call Reload to read
// it. port completes README-style lines that give no port ("" leaves them
// without one).
func NewFilePool(path, port string) *FilePool {
	p := &FilePool{path: path, port: port}
	p.lines.Store(&[]string{})
	return p
}

// Path returns the pool file's path.
func (p *FilePool) Path() string { return p.path }

// Reload reads the file again and replaces the pool's tuples. When the file
// cannot be read the pool becomes empty (TLB then answers FAILED 52, as the
// reference does for a missing file) and the error is returned. It returns the
// number of tuples loaded.
func (p *FilePool) Reload() (int, error) {
	data, err := os.ReadFile(p.path)
	if err != nil {
		p.lines.Store(&[]string{})
		return 0, fmt.Errorf("tlb: %w", err)
	}
	lines := ParseLines(data, p.port)
	p.lines.Store(&lines)
	return len(lines), nil
}

// Tuples returns a copy of the tuples the pool hands out, in file order.
func (p *FilePool) Tuples() []string {
	return append([]string(nil), *p.lines.Load()...)
}

// MaxTupleLen is the longest line FilePool hands out; longer lines are skipped.
// No "6 address;port" tuple comes near it, and a UDP_TLB answer must fit one
// datagram.
const MaxTupleLen = 1024

// ParseLines returns the tuples of a pool file's contents, as FilePool documents:
// README-style "ipv4:"/"ipv6:" lines translated, blank and "#" lines skipped,
// everything else verbatim.
func ParseLines(data []byte, port string) []string {
	var out []string
	for len(data) > 0 {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		line := strings.TrimRight(string(raw), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || len(line) > MaxTupleLen {
			continue
		}
		out = append(out, translate(line, port))
	}
	return out
}

// translate turns a README-style "ipv4: host[;port]" or "ipv6: host[;port]"
// line into "4 host;port" / "6 host;port"; other lines are returned unchanged.
func translate(line, port string) string {
	t := strings.TrimSpace(line)
	var fam string
	switch {
	case hasPrefixFold(t, "ipv4:"):
		fam = "4"
	case hasPrefixFold(t, "ipv6:"):
		fam = "6"
	default:
		return line
	}
	host := strings.TrimSpace(t[len("ipv4:"):])
	if host == "" {
		return line
	}
	if h, pt, ok := strings.Cut(host, ";"); ok {
		host, port = strings.TrimSpace(h), strings.TrimSpace(pt)
	}
	if port == "" {
		return fam + " " + host
	}
	return fam + " " + host + ";" + port
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// NewPicker returns a picker that starts at the first tuple.
func (p *FilePool) NewPicker() Picker { return &filePicker{pool: p} }

type filePicker struct {
	pool *FilePool
	next atomic.Uint64
}

// Next returns the picker's next tuple, wrapping after the last one, or
// ErrEmpty. Safe for concurrent use.
func (f *filePicker) Next() (string, error) {
	lines := *f.pool.lines.Load()
	if len(lines) == 0 {
		return "", ErrEmpty
	}
	i := f.next.Add(1) - 1
	return lines[i%uint64(len(lines))], nil
}
