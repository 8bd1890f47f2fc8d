package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tfd-project/tfd/client"
)

// HPFI verbs: put and get (PUT/GET, or PUTCAN/GETCAN with -can N).
func init() {
	register("put", verb{usage: "put [-offset N] [-buf SIZE] [-can N] [-stop] LOCAL REMOTE",
		summary: "upload a local file (- = stdin) with PUT, written in place at -offset (no truncation)", run: runPut})
	register("get", verb{usage: "get [-offset N] [-buf SIZE] [-can N] REMOTE [LOCAL]",
		summary: "download a remote file from -offset with GET to LOCAL (default stdout)", run: runGet})
}

// hpfVerbFlags are the flags put and get share.
type hpfVerbFlags struct {
	offset int64
	buf    string
	can    uint64
	useCan bool
}

func (h *hpfVerbFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&h.offset, "offset", 0, "byte offset in the remote file")
	fs.StringVar(&h.buf, "buf", "8MiB", "buffer size to ask the server for")
	fs.Func("can", "use PUTCAN/GETCAN with a cancellation window every N chunks (0 = none)", func(s string) error {
		_, err := fmt.Sscan(s, &h.can)
		h.useCan = true
		return err
	})
}

func (h *hpfVerbFlags) options(extra ...client.HPFOption) ([]client.HPFOption, error) {
	n, err := parseSize(h.buf)
	if err != nil {
		return nil, usageError(err.Error())
	}
	if h.offset < 0 {
		return nil, usageError("-offset must be ≥ 0")
	}
	return append([]client.HPFOption{client.WithBufferSize(n)}, extra...), nil
}

func runPut(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var h hpfVerbFlags
	h.register(fs)
	stop := fs.Bool("stop", false, "end with HPFSTOP (more will follow at a later offset)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() != 2 {
		return usageError("put needs LOCAL and REMOTE")
	}
	var extra []client.HPFOption
	if *stop {
		extra = append(extra, client.WithStop())
	}
	opts, err := h.options(extra...)
	if err != nil {
		return err
	}
	return withSource(fs.Arg(0), func(r io.Reader) error {
		return withClient(ctx, e, func(c *client.Client) error {
			if h.useCan {
				_, err := c.PutFileCan(ctx, fs.Arg(1), r, h.offset, h.can, opts...)
				return err
			}
			_, err := c.PutFile(ctx, fs.Arg(1), r, h.offset, opts...)
			return err
		})
	})
}

func runGet(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var h hpfVerbFlags
	h.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError("get needs REMOTE and an optional LOCAL")
	}
	opts, err := h.options()
	if err != nil {
		return err
	}
	return withClient(ctx, e, func(c *client.Client) error {
		get := func(w io.Writer) error {
			var err error
			if h.useCan {
				_, err = c.GetFileCan(ctx, fs.Arg(0), w, h.offset, h.can, opts...)
			} else {
				_, err = c.GetFile(ctx, fs.Arg(0), w, h.offset, opts...)
			}
			return err
		}
		if fs.NArg() == 1 || fs.Arg(1) == "-" {
			return get(e.stdout)
		}
		f, err := os.Create(fs.Arg(1))
		if err != nil {
			return err
		}
		err = get(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(fs.Arg(1))
		}
		return err
	})
}
