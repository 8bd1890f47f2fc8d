package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tfd-project/tfd/client"
)

// Transfer verbs: sndfile, sup, sdown, sha256, fsize.
func init() {
	register("sndfile", verb{usage: "sndfile [-f] LOCAL REMOTE", summary: "send a local file (- = stdin) with SNDFILE; -f overwrites",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := flag.NewFlagSet("sndfile", flag.ContinueOnError)
			fs.SetOutput(e.stderr)
			force := fs.Bool("f", false, "overwrite an existing remote file")
			if err := fs.Parse(args); err != nil {
				return usageError(err.Error())
			}
			if fs.NArg() != 2 {
				return usageError("sndfile needs LOCAL and REMOTE")
			}
			return withSource(fs.Arg(0), func(r io.Reader) error {
				return withClient(ctx, e, func(c *client.Client) error {
					_, err := c.SendFile(ctx, fs.Arg(1), r, *force)
					return err
				})
			})
		}})
	register("sup", verb{usage: "sup LOCAL REMOTE", summary: "upload a local file (- = stdin) with SUP, replacing the remote file",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 {
				return usageError("sup needs LOCAL and REMOTE")
			}
			return withSource(args[0], func(r io.Reader) error {
				return withClient(ctx, e, func(c *client.Client) error {
					_, err := c.Upload(ctx, args[1], r)
					return err
				})
			})
		}})
	register("sdown", verb{usage: "sdown REMOTE [LOCAL]", summary: "download a remote file with SDOWN to LOCAL (default stdout)",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError("sdown needs REMOTE and an optional LOCAL")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				if len(args) == 1 || args[1] == "-" {
					_, err := c.Download(ctx, args[0], e.stdout)
					return err
				}
				f, err := os.Create(args[1])
				if err != nil {
					return err
				}
				_, err = c.Download(ctx, args[0], f)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(args[1])
				}
				return err
			})
		}})
	register("sha256", verb{usage: "sha256 REMOTE", summary: "print the SHA-256 of a remote file",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usageError("sha256 needs REMOTE")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				sum, err := c.SHA256(ctx, args[0])
				if err == nil {
					fmt.Fprintln(e.stdout, hex.EncodeToString(sum[:]))
				}
				return err
			})
		}})
	register("fsize", verb{usage: "fsize REMOTE", summary: "print the size of a remote regular file (FSIZE)",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usageError("fsize needs REMOTE")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				n, err := c.FileSize(ctx, args[0])
				if err == nil {
					fmt.Fprintln(e.stdout, n)
				}
				return err
			})
		}})
}

// withSource opens a local file ("-" = stdin) for f.
func withSource(name string, f func(io.Reader) error) error {
	if name == "-" {
		return f(os.Stdin)
	}
	file, err := os.Open(name)
	if err != nil {
		return err
	}
	defer file.Close()
	return f(file)
}
