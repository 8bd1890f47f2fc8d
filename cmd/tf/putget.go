package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/tfproto"
)

// put and get: the High-Performance File Interface (PUT/GET), with progress
// bars and --resume.
//
// An interrupted put (Ctrl-C, SIGTERM) stops reading the local file and ends
// the upload normally, so the server keeps every byte it received; put
// --resume then continues at the remote file's size. An interrupted get keeps
// the local file as far as it got; get --resume continues at its size.

func init() {
	register("put", verb{usage: "put [--resume] LOCAL [REMOTE]", summary: "upload a local file (PUT, the fast interface) with a progress bar",
		help: `REMOTE defaults to LOCAL's base name in the data root; a REMOTE ending in "/"
is a directory to put LOCAL's base name in. An existing remote file is
replaced. With --resume the upload continues at the remote file's current size
(after an interrupted put; a missing remote file starts at 0). Interrupting a
put (Ctrl-C) keeps what was sent, and tf says how to resume; a second Ctrl-C
ends tf at once. The bar is drawn on stderr when it is a terminal (-q: never).`,
		examples: `tf put backup.tar.gz
tf put backup.tar.gz backups/
tf put --resume backup.tar.gz backups/backup.tar.gz
tf -q put big.iso isos/big.iso && echo uploaded`,
		run: putVerb})
	register("get", verb{usage: "get [--resume] REMOTE [LOCAL]", summary: "download a remote file (GET, the fast interface) with a progress bar",
		help: `LOCAL defaults to REMOTE's base name in the current directory; an existing
local directory receives REMOTE's base name; "-" writes to stdout. An
existing local file is replaced. With --resume the download continues at the
local file's size (after an interrupted get).`,
		examples: `tf get backups/backup.tar.gz
tf get backups/backup.tar.gz /tmp/
tf get --resume isos/big.iso big.iso
tf get logs/app.log - | less`,
		run: getVerb})
}

func putVerb(ctx context.Context, e *env, args []string) error {
	var resume bool
	fs, err := parseFlags(e, "put", args, func(fs *flag.FlagSet) { fs.BoolVar(&resume, "resume", false, "continue at the remote file's size") })
	if err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError("put needs LOCAL and an optional REMOTE")
	}
	local := fs.Arg(0)
	remote := fs.Arg(1)
	switch {
	case remote == "":
		remote = filepath.Base(local)
	case remote[len(remote)-1] == '/':
		remote += filepath.Base(local)
	}
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("put: %s is not a regular file", local)
	}
	size := st.Size()
	return withClient(ctx, e, func(c *client.Client) error {
		fi, exists, err := remoteStat(ctx, c, remote)
		if err != nil {
			return err
		}
		if exists && fi.Type != 'F' {
			return fmt.Errorf("put: remote %s is a %s", remote, typeName(fi.Type))
		}
		var offset int64
		switch {
		case resume && exists && int64(fi.Size) > size:
			return fmt.Errorf("put --resume: remote %s (%d bytes) is larger than %s (%d bytes); not resuming", remote, fi.Size, local, size)
		case resume && exists:
			offset = int64(fi.Size)
		case exists:
			// PUT writes in place without truncating: start from an empty
			// file so no old tail survives.
			if err := c.Delete(ctx, remote); err != nil {
				return err
			}
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return err
		}
		bar := e.newProgress(e, "put "+path.Base(remote), size)
		bar.Add(offset)
		// The transfer itself runs without ctx: an interruption stops the
		// reader instead, which ends the upload with HPFEND and keeps the
		// data (a cancel through ctx would make the server delete it).
		r := &interruptReader{ctx: ctx, r: f, p: bar}
		n, err := c.PutFile(context.WithoutCancel(ctx), remote, r, offset)
		done := offset + n
		if err == nil && r.interrupted {
			err = fmt.Errorf("%w: put stopped after %d of %d bytes; tf put --resume %s %s continues", errInterrupted, done, size, local, remote)
		} else if err == nil && done != size {
			err = fmt.Errorf("put: sent %d of %d bytes (%s changed while reading?)", done, size, local)
		}
		bar.Done(err == nil)
		return err
	})
}

func getVerb(ctx context.Context, e *env, args []string) error {
	var resume bool
	fs, err := parseFlags(e, "get", args, func(fs *flag.FlagSet) { fs.BoolVar(&resume, "resume", false, "continue at the local file's size") })
	if err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError("get needs REMOTE and an optional LOCAL")
	}
	remote, local := fs.Arg(0), fs.Arg(1)
	if local == "" {
		local = path.Base(remote)
	} else if st, err := os.Stat(local); err == nil && st.IsDir() {
		local = filepath.Join(local, path.Base(remote))
	}
	if local == "-" && resume {
		return usageError("get --resume needs a LOCAL file, not stdout")
	}
	return withClient(ctx, e, func(c *client.Client) error {
		fi, err := c.Stat(ctx, remote)
		if err != nil {
			return err
		}
		if fi.Type != 'F' {
			return fmt.Errorf("get: remote %s is a %s", remote, typeName(fi.Type))
		}
		size := int64(fi.Size)
		if local == "-" {
			bar := e.newProgress(e, "get "+path.Base(remote), size)
			_, err := c.GetFile(ctx, remote, countingWriter{w: e.stdout, p: bar}, 0)
			bar.Done(err == nil)
			return err
		}
		var offset int64
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if resume {
			if st, err := os.Stat(local); err == nil {
				offset = st.Size()
			}
			if offset > size {
				return fmt.Errorf("get --resume: %s (%d bytes) is larger than remote %s (%d bytes); not resuming", local, offset, remote, size)
			}
			flags = os.O_WRONLY | os.O_CREATE
		}
		f, err := os.OpenFile(local, flags, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return err
		}
		bar := e.newProgress(e, "get "+path.Base(remote), size)
		bar.Add(offset)
		n, err := c.GetFile(ctx, remote, countingWriter{w: f, p: bar}, offset)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done := offset + n
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: get stopped after %d of %d bytes; tf get --resume %s %s continues", errInterrupted, done, size, remote, local)
		}
		bar.Done(err == nil)
		return err
	})
}

// remoteStat is FSTAT that reports a missing path as exists=false.
func remoteStat(ctx context.Context, c *client.Client, p string) (fi client.FileInfo, exists bool, err error) {
	fi, err = c.Stat(ctx, p)
	var fe *tfproto.Error
	if errors.As(err, &fe) && fe.Code == tfproto.CodeFileNotExist {
		return fi, false, nil
	}
	return fi, err == nil, err
}

// interruptReader reads r and counts on p until ctx ends; from then on it
// reports EOF (and remembers it was interrupted).
type interruptReader struct {
	ctx         context.Context
	r           io.Reader
	p           progress
	interrupted bool
}

func (ir *interruptReader) Read(b []byte) (int, error) {
	if ir.ctx.Err() != nil {
		ir.interrupted = true
		return 0, io.EOF
	}
	n, err := ir.r.Read(b)
	ir.p.Add(int64(n))
	return n, err
}

// countingWriter passes writes to w and counts them on p.
type countingWriter struct {
	w io.Writer
	p progress
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.p.Add(int64(n))
	return n, err
}
