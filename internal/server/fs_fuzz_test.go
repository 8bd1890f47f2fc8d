package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

// fsCommandNames are the commands FuzzFSCommands sends.
var fsCommandNames = map[string]bool{"MKDIR": true, "DEL": true, "RMDIR": true, "COPY": true, "TOUCH": true,
	"FSTAT": true, "FUPD": true, "CPDIR": true, "RENAM": true, "LOCK": true, "RMSECDIR": true, "XCOPY": true,
	"XCPDIR": true, "XDEL": true, "XRMDIR": true, "LS": true, "LSR": true, "RCVFILE": true}

// FuzzFSCommands sends arbitrary file-command lines to a real server over TCP:
// every reply must be OK, an exact FAILED line or a RCVFILE flow (answered
// with BREAK), the session must stay in step, and nothing outside the root may
// change.
func FuzzFSCommands(f *testing.F) {
	for _, s := range []string{"MKDIR ..", "DEL evil/etc/passwd", "RMDIR ", "COPY f.txt | ../c", "CPDIR d | d/x",
		"RENAM d | ../d", "XCOPY ../x f.txt | sub", "XCPDIR n d | /", "XDEL .. g", "XRMDIR  sub", "LSR ",
		"LS in", "RCVFILE 1 evilf", "RCVFILE 0 d/f", "LOCK lk", "RMSECDIR tok | s.sd", "TOUCH p", "FSTAT p",
		"FUPD dangling", "COPY p | q", "MKDIR a\x00b", "LS " + strings.Repeat("a/", 3000)} {
		f.Add(s)
	}
	srv := servertest.Start(f)
	c := srv.Dial(f)
	f.Fuzz(func(t *testing.T, line string) {
		name, _, _ := strings.Cut(line, " ")
		if !fsCommandNames[strings.ToUpper(name)] || len(line) > tfproto.MaxFrame {
			return
		}
		// A fresh tree each time: XCPDIR of the root multiplies the tree by
		// its number of targets, so repeated runs would grow it without bound.
		fsFixture(t, srv)
		err := c.Exchange(servertest.Context(t), func(conn *tfproto.Conn) error {
			if err := conn.WriteFrameString(line); err != nil {
				return err
			}
			for {
				body, err := conn.ReadFrame(0)
				if err != nil {
					return err
				}
				st := tfproto.ParseStatus(body)
				switch {
				case st.Kind == tfproto.KindCont:
					if err := conn.WriteFrameString(tfproto.Break); err != nil {
						return err
					}
				case st.Kind == tfproto.KindOK:
					return nil
				case st.Kind == tfproto.KindFailed && st.Code.Line() == string(body):
					return nil
				default:
					// Not t.Fatal here: that would leave the exchange half done.
					return fmt.Errorf("unexpected reply %.60q", body)
				}
			}
		})
		if err != nil {
			t.Fatalf("%.60q: %v", line, err)
		}
		if got, err := c.Echo(servertest.Context(t), "x"); err != nil || got != "x" {
			t.Fatalf("%.60q: session out of step: %v", line, err)
		}
		outsideIntact(t, srv)
	})
}
