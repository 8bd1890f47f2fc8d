package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/tfd-project/tfd/client"
)

// gwStdin is where tf gw reads the lines to send (a test replaces it).
var gwStdin io.Reader = os.Stdin

func init() {
	register("gw", verb{usage: "gw [--sign] IDENTITY",
		summary: "join XS_GATEWAY as IDENTITY: type \"DEST message\" lines to send; received messages are printed; EOF leaves",
		run:     runGW})
}

// runGW is tf gw: an interactive peer for demos and manual checks. Each input
// line "DEST message" sends message to the peer registered as DEST; every
// message delivered to IDENTITY is printed on its own line. EOF (Ctrl-D) or an
// interrupt leaves the gateway with -1 and ends the session. The gateway
// carries no sender identity; --sign prefixes each sent message with
// "IDENTITY: " so the receiver sees who wrote it.
func runGW(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("gw", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sign := fs.Bool("sign", false, `prefix sent messages with "IDENTITY: "`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return usageError("gw needs one IDENTITY, e.g. tf gw alice")
	}
	id := fs.Arg(0)
	return withClient(ctx, e, func(c *client.Client) error {
		g, err := c.Gateway(ctx, id)
		if err != nil {
			return err
		}
		var outMu sync.Mutex
		printf := func(w io.Writer, format string, a ...any) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(w, format, a...)
		}
		printf(e.stderr, "joined the gateway as %q; type \"DEST message\" lines, Ctrl-D to leave\n", id)

		recvDone := make(chan error, 1)
		go func() {
			for {
				m, err := g.Recv(context.Background())
				if err != nil {
					if errors.Is(err, client.ErrGatewayClosed) {
						err = nil
					}
					recvDone <- err
					return
				}
				printf(e.stdout, "%s\n", strings.TrimSuffix(string(m), "\n"))
			}
		}()

		lines := make(chan string)
		quit := make(chan struct{})
		defer close(quit)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(gwStdin)
			sc.Buffer(make([]byte, 64*1024), client.MaxGatewayMessage+4096)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-quit:
					return
				}
			}
		}()
		var loopErr error
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case err := <-recvDone:
				// The connection ended under us.
				return fmt.Errorf("gateway: %w", err)
			case line, ok := <-lines:
				if !ok {
					break loop
				}
				dest, msg, found := strings.Cut(line, " ")
				if !found || dest == "" {
					if strings.TrimSpace(line) != "" {
						printf(e.stderr, "tf gw: type DEST message (no destination in %q)\n", line)
					}
					continue
				}
				if *sign {
					msg = id + ": " + msg
				}
				if err := g.Send(dest, []byte(msg)); err != nil {
					loopErr = err
					break loop
				}
			}
		}
		cerr := g.Close()
		if rerr := <-recvDone; loopErr == nil && cerr == nil {
			loopErr = rerr
		}
		return errors.Join(loopErr, cerr)
	})
}
