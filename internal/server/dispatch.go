package server

import (
	"bytes"
	"errors"
)

// errEnd ends a session normally (END).
var errEnd = errors.New("session ended by client")

// A handler runs one command. args is everything after "NAME " (empty when the
// client sent no space). A client error is answered with a FAILED line and
// returns nil; a returned error ends the session (the connection is out of step
// or gone).
type handler func(s *session, args string) error

// access says in which session states a command may run besides the normal one
// (logged in and, with injail configured, jailed); WIRE.md §4.2.
type access uint8

const (
	// preLogin commands run before LOGIN in multi-user mode: END, LOGIN,
	// KEEPALIVE, PROCKEY.
	preLogin access = 1 << iota
	// preJail commands run after login but before INJAIL when injail is
	// configured: END, INJAIL.
	preJail
)

// command is one entry of the dispatch table.
type command struct {
	name   string
	run    handler
	access access
	family string
}

// commandTable maps upper-case names to commands. Families fill it from init.
var commandTable = map[string]*command{}

// maxNameLen is the longest command name the reference reads.
const maxNameLen = 31

// parseCommand splits a command body into the upper-cased name (bytes up to the
// first space) and the arguments (everything after that one space, WIRE.md §4.1).
func parseCommand(body []byte) (name, args string) {
	n, a, _ := bytes.Cut(body, []byte{' '})
	if len(n) > maxNameLen {
		return "", string(a)
	}
	return upperASCII(string(n)), string(a)
}

func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
