package server

import (
	"os"
	"sync/atomic"
)

// FailStagedWritesAfter makes every write to a staging file fail with err once
// n bytes have been staged in total (tests only); restore undoes it.
func FailStagedWritesAfter(n int64, err error) (restore func()) {
	var written atomic.Int64
	h := func(f *os.File, b []byte) (int, error) {
		if written.Load()+int64(len(b)) > n {
			return 0, err
		}
		written.Add(int64(len(b)))
		return f.Write(b)
	}
	old := writeStagedHook.Swap(&h)
	return func() { writeStagedHook.Store(old) }
}

// SockKeepalive is a socket's keepalive state read back with getsockopt.
type SockKeepalive = sockKeepalive

// ProbeKeepalive makes every KEEPALIVE report the socket's options, read back
// from the kernel after the command, to f (tests only).
func ProbeKeepalive(f func(SockKeepalive)) (restore func()) {
	old := keepaliveProbe.Swap(&f)
	return func() { keepaliveProbe.Store(old) }
}

// ForceNamedStaging makes transfers stage under a hidden name instead of an
// unnamed O_TMPFILE, as on filesystems without O_TMPFILE (tests only).
func ForceNamedStaging(on bool) (restore func()) {
	old := namedStagingOnly.Swap(on)
	return func() { namedStagingOnly.Store(old) }
}
