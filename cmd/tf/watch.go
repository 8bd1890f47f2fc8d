package main

import (
	"context"
	"flag"
	"fmt"
	"path"
	"strings"

	"github.com/tfd-project/tfd/client"
)

func init() {
	register("watch", verb{usage: "watch [--delete] [--count N] [--interval S] DIR [TOKEN]",
		summary: "print each file that appears in a server directory (notification mode)",
		help: `Prints one line per file, DIR/NAME, as the server reports it. Only files
whose names start with TOKEN count (at most 7 bytes; default: every file). Each
report is answered OK (the server keeps the file and does not report it again
unless it is replaced or modified) or, with --delete, DEL (the server deletes
it: a work queue). --count stops after N files; otherwise watch runs until
interrupted. --interval is the server's sweep interval in seconds (e.g. 0.5;
default the server's). The session serves nothing else while it watches.
A file written in place (tf put) is reported again as it changes: upload
beside the watched directory and tf mv the file in, or use tf sup or tf
sndfile, which publish a file whole.`,
		examples: `tf watch inbox
tf watch --delete inbox job_
tf watch --count 1 inbox && echo "something arrived"
tf put job.txt && tf mv job.txt inbox/job.txt      # (elsewhere) feed it
tf watch inbox | while read f; do echo "new: $f"; done`,
		run: watch})
	register("check", verb{usage: "check host | proc KEY | sock KEY | tlb | oob",
		summary: "UDP keepalive checks on the server's port, or an out-of-band round trip (oob)",
		examples: `tf check host
tf check proc /17637866941234567112345678901
tf check oob`,
		run: check})
}

func watch(ctx context.Context, e *env, args []string) error {
	var del bool
	var count int
	var interval string
	fs, err := parseFlags(e, "watch", args, func(fs *flag.FlagSet) {
		fs.StringVar(&interval, "interval", "", "server sweep interval in seconds, e.g. 0.5 or 1e-2 (default: the server's)")
		fs.BoolVar(&del, "delete", false, "answer DEL: the server deletes each reported file")
		fs.IntVar(&count, "count", 0, "stop after this many files (0 = until interrupted)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || fs.Arg(0) == "" {
		return usageError("watch needs DIR and an optional TOKEN")
	}
	if count < 0 {
		return usageError("watch: --count must be ≥ 0")
	}
	dir, token := fs.Arg(0), fs.Arg(1)
	if len(token) > 7 || strings.ContainsAny(token, " /") {
		return usageError("watch: TOKEN is at most 7 bytes, without spaces or /")
	}
	return withClient(ctx, e, func(c *client.Client) error {
		if err := c.AddNotify(ctx, token, dir); err != nil {
			return err
		}
		st, err := c.StartNotify(ctx, interval)
		if err != nil {
			return err
		}
		answer := client.Keep
		if del {
			answer = client.Delete
		}
		for n := 1; ; n++ {
			note, err := st.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: the normal way to stop watching
				}
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, path.Join(dir, note.Name)); err != nil {
				return err
			}
			if err := st.Answer(ctx, answer); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if count > 0 && n >= count {
				return nil // closing the session sends END
			}
		}
	})
}

func check(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageError("check needs host, proc KEY, sock KEY, tlb or oob")
	}
	addr := e.conn.addr // the UDP services share the TCP port number
	needKey := func() (string, error) {
		if len(args) != 2 {
			return "", usageError("check " + args[0] + " needs a PROCKEY, e.g. /17635123451234567")
		}
		return args[1], nil
	}
	switch args[0] {
	case "host":
		if err := client.HostCheck(ctx, addr); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "reachable")
	case "proc":
		key, err := needKey()
		if err != nil {
			return err
		}
		alive, err := client.ProcCheck(ctx, addr, key)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, map[bool]string{true: "alive", false: "gone"}[alive])
	case "sock":
		key, err := needKey()
		if err != nil {
			return err
		}
		n, alive, err := client.SockCheck(ctx, addr, key)
		if err != nil {
			return err
		}
		if !alive {
			fmt.Fprintln(e.stdout, "gone")
			return nil
		}
		fmt.Fprintln(e.stdout, n)
	case "tlb":
		t, err := client.UDPTLB(ctx, addr)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, t)
	case "oob":
		return withClient(ctx, e, func(c *client.Client) error {
			key, err := c.ProcKey(ctx)
			if err != nil {
				return err
			}
			if err := c.OOBPing(ctx); err != nil {
				return err
			}
			n, alive, err := client.SockCheck(ctx, addr, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "prockey %s: out-of-band echo ok, alive %v, SOCKCHECK counter %d\n", key, alive, n)
			return nil
		})
	default:
		return usageError("check: unknown check " + args[0])
	}
	return nil
}
