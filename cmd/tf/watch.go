package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"

	"github.com/tfd-project/tfd/client"
)

func init() {
	register("watch", verb{usage: "watch [-token T] [-interval S] [-delete] [-count N] DIR...",
		summary: "print files appearing in server directories (notification mode); -delete removes each one",
		run:     watch})
	register("check", verb{usage: "check host | proc KEY | sock KEY | tlb | oob",
		summary: "UDP keepalive checks on the server's port, or an out-of-band round trip (oob)",
		run:     check})
}

func watch(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tf watch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	token := fs.String("token", "", "only files whose names start with this (at most 7 bytes)")
	interval := fs.String("interval", "", "server sweep interval in seconds, e.g. 0.5 or 1e-2 (default: the server's)")
	del := fs.Bool("delete", false, "answer DEL: the server deletes each notified file")
	count := fs.Int("count", 0, "stop after this many notifications (0 = until interrupted)")
	if err := fs.Parse(args); err != nil {
		return usageError("watch: " + err.Error())
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		return usageError("watch needs at least one directory")
	}
	return withClient(ctx, e, func(c *client.Client) error {
		for _, d := range dirs {
			if err := c.AddNotify(ctx, *token, d); err != nil {
				return err
			}
		}
		st, err := c.StartNotify(ctx, *interval)
		if err != nil {
			return err
		}
		for n := 1; ; n++ {
			note, err := st.Next(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d %s\n", note.Index, path.Join(dirs[note.Index], note.Name))
			a := client.Keep
			if *del {
				a = client.Delete
			}
			if err := st.Answer(ctx, a); err != nil {
				return err
			}
			if *count > 0 && n >= *count {
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
