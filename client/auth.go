package client

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
)

// Login logs the session in as user (LOGIN), for servers in multi-user mode.
// The user name may not contain spaces; the password may.
func (c *Client) Login(ctx context.Context, user, password string) error {
	_, err := c.command(ctx, "LOGIN "+user+" "+password)
	return err
}

// Chmod sets the permission bits, and the setuid, setgid and sticky bits, of a
// path (CHMOD). The path may not contain spaces (the protocol ends it at the
// first one).
func (c *Client) Chmod(ctx context.Context, path string, mode fs.FileMode) error {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	_, err := c.command(ctx, fmt.Sprintf("CHMOD %s %s", path, strconv.FormatUint(uint64(m), 8)))
	return err
}

// Chown gives a path to a system user and group, by name (CHOWN). The path and
// the user name may not contain spaces.
func (c *Client) Chown(ctx context.Context, path, user, group string) error {
	_, err := c.command(ctx, "CHOWN "+path+" "+user+" "+group)
	return err
}

// Injail confines the session to dir (INJAIL), if token is one of the lines of
// dir/jail.key on the server.
func (c *Client) Injail(ctx context.Context, token, dir string) error {
	_, err := c.command(ctx, "INJAIL "+token+" | "+dir)
	return err
}
