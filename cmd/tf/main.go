// Command tf is the TFProtocol command-line client.
//
// Connection settings come from flags or the environment: --addr (TF_ADDR),
// --proto (TF_PROTO), --hash (TF_HASH), --pubkey (TF_PUBKEY, a PEM file path).
// Run "tf help" for the verbs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/tfproto"
)

// A verb is one tf subcommand; each lives in its own file and registers itself
// from init.
type verb struct {
	usage   string // "VERB ARGS", shown in help
	summary string
	// help is the longer description shown by "tf help VERB" (optional).
	help string
	// examples are shell lines shown by "tf help VERB", one per line.
	examples string
	// run executes the verb. env carries the streams and the connection flags.
	run func(ctx context.Context, env *env, args []string) error
}

var verbs = map[string]verb{}

// register adds a verb; a name registered twice is a bug (two files claiming
// one verb) and panics at start-up.
func register(name string, v verb) {
	if _, dup := verbs[name]; dup {
		panic("tf: verb " + name + " registered twice")
	}
	verbs[name] = v
}

// env is what a verb gets: its streams, the connection settings and a way to
// connect.
type env struct {
	stdout, stderr io.Writer
	// stdin is the terminal (or nil) for password prompts and "-" sources.
	stdin *os.File
	conn  connFlags
	// quiet turns progress bars off (-q, or stderr is not a terminal).
	quiet bool
	// newProgress makes a transfer's progress meter (tests replace it).
	newProgress func(e *env, desc string, total int64) progress
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C asks the verb to stop cleanly (a put keeps what it
	// sent, for --resume); a second one kills tf at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes a script can rely on.
const (
	exitOK      = 0
	exitFailed  = 1 // the server answered FAILED (code and text on stderr)
	exitUsage   = 2 // bad command line
	exitError   = 3 // connection, protocol or local error
	exitUnknown = 4 // the server answered UNKNOWN
)

// run executes one tf invocation and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdout, stderr, os.LookupEnv, nil)
}

// runEnv is run with the environment lookup and the progress-meter factory
// given (tests pass their own).
func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool), newProgress func(*env, string, int64) progress) int {
	e := &env{stdout: stdout, stderr: stderr, stdin: os.Stdin, newProgress: newProgress}
	if e.newProgress == nil {
		e.newProgress = newBar
	}
	var g globalFlags
	global := flag.NewFlagSet("tf", flag.ContinueOnError)
	global.SetOutput(stderr)
	g.register(global)
	global.Usage = func() { usage(stdout, global) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	conn, err := g.resolve(global, lookup)
	if err != nil {
		return report(stderr, err)
	}
	e.conn = conn
	e.quiet = g.quiet || !isTerminal(stderr)
	if global.NArg() == 0 {
		usage(stderr, global)
		return exitUsage
	}
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" {
		if len(rest) == 1 {
			if v, ok := verbs[rest[0]]; ok {
				verbHelp(stdout, v)
				return exitOK
			}
			fmt.Fprintf(stderr, "tf: unknown verb %q (see tf help)\n", rest[0])
			return exitUsage
		}
		usage(stdout, global)
		return exitOK
	}
	v, ok := verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "tf: unknown verb %q (see tf help)\n", name)
		return exitUsage
	}
	if len(rest) == 1 && (rest[0] == "--help" || rest[0] == "-help") {
		verbHelp(stdout, v)
		return exitOK
	}
	return report(stderr, v.run(ctx, e, rest))
}

// report prints err and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	var fe *tfproto.Error
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "tf:", err)
		return exitUsage
	case errors.As(err, &fe):
		// The FAILED line comes first, alone, for scripts; context after it.
		fmt.Fprintln(stderr, fe.Error())
		if s := err.Error(); s != fe.Error() {
			fmt.Fprintln(stderr, "tf:", s)
		}
		return exitFailed
	case errors.Is(err, tfproto.ErrUnknownCommand):
		fmt.Fprintln(stderr, "UNKNOWN")
		return exitUnknown
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "tf:", err)
		return exitError
	}
	fmt.Fprintln(stderr, "tf:", err)
	return exitError
}

// usageError is a command-line mistake (exit code 2).
type usageError string

func (u usageError) Error() string { return string(u) }

func usage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintln(w, `tf is the command-line client for TFProtocol servers (tfd).

usage: tf [connection flags] VERB [args]
       tf help VERB          a verb's flags and examples

verbs:`)
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if u := verbs[n].usage; len(u) > 30 {
			fmt.Fprintf(w, "  %s\n  %-30s %s\n", u, "", verbs[n].summary)
		} else {
			fmt.Fprintf(w, "  %-30s %s\n", u, verbs[n].summary)
		}
	}
	fmt.Fprintln(w, "\nconnection flags (precedence: flag > environment > profile > default):")
	global.SetOutput(w)
	global.PrintDefaults()
	fmt.Fprintln(w, `
Connection flags go before the verb. Remote paths are relative to the server's
data root. Exit codes: 0 ok, 1 the server answered FAILED (its line on stderr),
2 usage, 3 connection, protocol or local error, 4 the server answered UNKNOWN.

examples:
  tf put report.pdf docs/report.pdf      upload (tf get for the way back)
  tf ls -R docs                          list a tree
  TF_ADDR=files:10345 tf df              bytes free on another server`)
}

// verbHelp prints one verb's usage, description and examples.
func verbHelp(w io.Writer, v verb) {
	fmt.Fprintf(w, "usage: tf [connection flags] %s\n\n%s\n", v.usage, v.summary)
	if v.help != "" {
		fmt.Fprintf(w, "\n%s\n", v.help)
	}
	if v.examples != "" {
		fmt.Fprintln(w, "\nexamples:")
		for _, l := range strings.Split(v.examples, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// withClient dials, runs f, and closes the session.
func withClient(ctx context.Context, e *env, f func(c *client.Client) error) error {
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

func init() {
	register("raw", verb{examples: `tf raw DATEF
tf raw "FSTAT docs/report.pdf"`,
		usage: "raw COMMAND [ARGS...]", summary: "send one protocol command line and print the reply (e.g. tf raw DATEF)",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usageError("raw needs a command, e.g. tf raw ECHO hello")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				st, err := c.Do(ctx, strings.Join(args, " "))
				if err != nil {
					return err
				}
				if err := st.Err(); err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s\n", st.Raw)
				return err
			})
		}})
	register("date", verb{examples: `tf date`,
		usage: "date", summary: "print the server's UTC date (DATEF)",
		run: func(ctx context.Context, e *env, args []string) error {
			return withClient(ctx, e, func(c *client.Client) error {
				d, err := c.DateF(ctx)
				if err == nil {
					fmt.Fprintln(e.stdout, d)
				}
				return err
			})
		}})
	register("df", verb{usage: "df [-h]", summary: "print the bytes free on the server's data partition (FREESP); -h in KiB/MiB/GiB",
		examples: "tf df\ntf df -h",
		run: func(ctx context.Context, e *env, args []string) error {
			human := len(args) == 1 && args[0] == "-h"
			if len(args) > 1 || (len(args) == 1 && !human) {
				return usageError("df takes only -h")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				n, err := c.FreeSpace(ctx)
				if err != nil {
					return err
				}
				if human {
					fmt.Fprintln(e.stdout, humanBytes(n))
				} else {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			})
		}})
	register("echo", verb{examples: `tf echo hello world`,
		usage: "echo TEXT...", summary: "send ECHO and print the reply",
		run: func(ctx context.Context, e *env, args []string) error {
			return withClient(ctx, e, func(c *client.Client) error {
				s, err := c.Echo(ctx, strings.Join(args, " "))
				if err == nil {
					fmt.Fprintln(e.stdout, s)
				}
				return err
			})
		}})
}

// humanBytes spells n in IEC units with one decimal, e.g. "74.9 GiB".
func humanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// parseFlags parses a verb's flags; -h prints the verb's help.
func parseFlags(e *env, name string, args []string, define func(fs *flag.FlagSet)) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("tf "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			verbHelp(e.stdout, verbs[name])
			return nil, err
		}
		return nil, usageError(name + ": " + err.Error())
	}
	return fs, nil
}
