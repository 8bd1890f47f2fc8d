package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tfd-project/tfd/client"
)

// File-system verbs: listings, RCVFILE, and the directory and file commands.
func init() {
	register("ls", verb{usage: "ls [PATH]", summary: "list a directory (LS); records as the server sends them",
		run: func(ctx context.Context, e *env, args []string) error { return listVerb(ctx, e, args, false) }})
	register("lsr", verb{usage: "lsr [PATH]", summary: "list a directory tree (LSR)",
		run: func(ctx context.Context, e *env, args []string) error { return listVerb(ctx, e, args, true) }})
	register("rcvfile", verb{usage: "rcvfile REMOTE [LOCAL]", summary: "download a file with RCVFILE to LOCAL or stdout",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError("get needs REMOTE [LOCAL]")
			}
			var w io.Writer = e.stdout
			if len(args) == 2 {
				f, err := os.Create(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return withClient(ctx, e, func(c *client.Client) error {
				_, err := c.ReceiveFile(ctx, args[0], w, false)
				return err
			})
		}})
	register("stat", verb{usage: "stat PATH", summary: "print type, size, atime and mtime (FSTAT)",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usageError("stat needs PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				fi, err := c.Stat(ctx, args[0])
				if err == nil {
					fmt.Fprintf(e.stdout, "%c %d %d %d\n", fi.Type, fi.Size, fi.Atime.Unix(), fi.Mtime.Unix())
				}
				return err
			})
		}})
	onePath := map[string]struct {
		summary string
		f       func(*client.Client, context.Context, string) error
	}{
		"mkdir": {"create a directory (MKDIR)", (*client.Client).Mkdir},
		"rm":    {"delete a file (DEL)", (*client.Client).Delete},
		"rmdir": {"delete a directory tree (RMDIR)", (*client.Client).Rmdir},
		"touch": {"create an empty file (TOUCH)", (*client.Client).Touch},
	}
	for name, v := range onePath {
		register(name, verb{usage: name + " PATH", summary: v.summary,
			run: func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usageError(name + " needs PATH")
				}
				return withClient(ctx, e, func(c *client.Client) error { return v.f(c, ctx, args[0]) })
			}})
	}
	twoPaths := map[string]struct {
		summary string
		f       func(*client.Client, context.Context, string, string) error
	}{
		"cp":    {"copy a file (COPY)", (*client.Client).Copy},
		"cpdir": {"copy a directory tree (CPDIR)", (*client.Client).CopyDir},
		"mv":    {"rename (RENAM)", (*client.Client).Rename},
	}
	for name, v := range twoPaths {
		register(name, verb{usage: name + " FROM TO", summary: v.summary,
			run: func(ctx context.Context, e *env, args []string) error {
				if len(args) != 2 {
					return usageError(name + " needs FROM TO")
				}
				return withClient(ctx, e, func(c *client.Client) error { return v.f(c, ctx, args[0], args[1]) })
			}})
	}
}

func listVerb(ctx context.Context, e *env, args []string, recursive bool) error {
	if len(args) > 1 {
		return usageError("ls/lsr take at most one PATH")
	}
	p := ""
	if len(args) == 1 {
		p = args[0]
	}
	return withClient(ctx, e, func(c *client.Client) error {
		raw, err := c.ListRaw(ctx, p, recursive)
		if err == nil {
			_, err = e.stdout.Write(raw)
		}
		return err
	})
}
