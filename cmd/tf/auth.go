package main

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/tfd-project/tfd/client"
)

// Multi-user servers and jails: every verb logs in and jails itself right after
// the handshake when the connection settings say so (settings.go): --user /
// TF_USER with the password from TF_PASSWORD or a password file (never from the
// command line, where other users could read it in the process list), and
// --jail-token / TF_JAIL_TOKEN with --jail / TF_JAIL for INJAIL token | dir.
func (e *env) sessionSetup(ctx context.Context, c *client.Client, password string) error {
	if u := e.conn.user; u != "" {
		if strings.ContainsAny(u, " \n") {
			return usageError("a user name cannot contain spaces")
		}
		if err := c.Login(ctx, u, password); err != nil {
			return fmt.Errorf("LOGIN %s: %w", u, err)
		}
	}
	if tok := e.conn.values["jail-token"]; tok != "" {
		if err := c.Injail(ctx, tok, e.conn.values["jail"]); err != nil {
			return fmt.Errorf("INJAIL %s: %w", e.conn.values["jail"], err)
		}
	}
	return nil
}

func init() {
	register("chmod", verb{usage: "chmod MODE PATH", summary: "set a path's mode, octal as chmod(1) takes it, e.g. 640 or 1777 (CHMOD)",
		examples: "tf chmod 640 notes.txt\ntf chmod 1777 shared",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 {
				return usageError("chmod needs MODE and PATH, e.g. tf chmod 640 /notes.txt")
			}
			n, err := strconv.ParseUint(args[0], 8, 32)
			if err != nil || n > 0o7777 {
				return usageError(fmt.Sprintf("mode %q is not an octal mode (0 to 7777)", args[0]))
			}
			m := fs.FileMode(n & 0o777)
			for bit, flag := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
				if n&bit != 0 {
					m |= flag
				}
			}
			return withClient(ctx, e, func(c *client.Client) error { return c.Chmod(ctx, args[1], m) })
		}})
	register("chown", verb{usage: "chown USER GROUP PATH", summary: "give a path to a system user and group, by name (CHOWN)",
		examples: "tf chown alice staff report.pdf",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 3 {
				return usageError("chown needs USER, GROUP and PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error { return c.Chown(ctx, args[2], args[0], args[1]) })
		}})
}
