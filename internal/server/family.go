package server

import (
	"fmt"

	"github.com/tfd-project/tfd/internal/config"
)

// A family is one group of commands (core, file system, transfers, HPFI, auth,
// notifications, network services, gateway …), defined in its own file. It
// registers itself from that file's init function, so adding a family or a
// command never touches the dispatcher:
//
//	func init() { registerFamily(family{name: "core", commands: coreCommands}) }
//
// A family that needs per-server or per-session state declares a struct type for
// it in its own file and adds one field of that type to Server or session.
type family struct {
	name     string
	commands []command
	// start runs once when the server is created (optional).
	start func(*Server) error
	// stop runs once when the server has shut down (optional).
	stop func(*Server)
	// sessionStart runs when a connection is accepted, before the handshake,
	// on the session's goroutine (optional).
	sessionStart func(*session)
	// sessionEnd runs when a session ends, on the session's goroutine
	// (optional): release what the family holds for it.
	sessionEnd func(*session)
	// reload prepares the family for the configuration next, replacing cur
	// (optional; see reload.go). It returns an error to refuse next (nothing
	// changes then), or a commit function run once every family has
	// prepared, right after next is in force (nil = nothing to commit). It
	// runs on the goroutine calling Server.Reload while sessions run.
	reload func(s *Server, cur, next *config.Config) (commit func(), err error)
}

var families []family

func registerFamily(f family) {
	for _, c := range f.commands {
		name := upperASCII(c.name)
		if _, dup := commandTable[name]; dup {
			panic(fmt.Sprintf("server: command %s registered twice", name))
		}
		c := c
		c.family = f.name
		commandTable[name] = &c
	}
	families = append(families, f)
}

// startFamilies starts every family in order. If one fails, the families
// already started are stopped again (and only those: a family whose start did
// not run has nothing to stop) before the error is returned.
func (s *Server) startFamilies() error {
	for i, f := range families {
		if f.start != nil {
			if err := f.start(s); err != nil {
				s.stopFamiliesBefore(i)
				return fmt.Errorf("start %s: %w", f.name, err)
			}
		}
	}
	return nil
}

func (s *Server) stopFamilies() { s.stopFamiliesBefore(len(families)) }

// stopFamiliesBefore stops the first n families, last first.
func (s *Server) stopFamiliesBefore(n int) {
	for i := n - 1; i >= 0; i-- {
		if f := families[i]; f.stop != nil {
			f.stop(s)
		}
	}
}

func (sess *session) startFamilies() {
	for _, f := range families {
		if f.sessionStart != nil {
			f.sessionStart(sess)
		}
	}
}

func (sess *session) endFamilies() {
	for i := len(families) - 1; i >= 0; i-- {
		if f := families[i]; f.sessionEnd != nil {
			f.sessionEnd(sess)
		}
	}
}
