//go:build linux && !386 && !arm

package auth

import "golang.org/x/sys/unix"

// sysSetgroups is the setgroups syscall taking 32-bit gids.
const sysSetgroups = unix.SYS_SETGROUPS
