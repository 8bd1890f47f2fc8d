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
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/tfproto"
)

// A verb is one tf subcommand; each lives in its own file and registers itself
// from init.
type verb struct {
	usage   string // "VERB ARGS", shown in help
	summary string
	// run executes the verb. env carries the streams and the connection flags.
	run func(ctx context.Context, env *env, args []string) error
}

var verbs = map[string]verb{}

func register(name string, v verb) {
	if _, dup := verbs[name]; dup {
		panic("tf: verb " + name + " registered twice")
	}
	verbs[name] = v
}

// env is what a verb gets: its output streams and a way to connect.
type env struct {
	stdout, stderr io.Writer
	conn           connFlags
}

// connFlags are the connection settings shared by every verb.
type connFlags struct {
	addr, proto, hash, pubkey string
	timeout                   time.Duration
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", envOr("TF_ADDR", "127.0.0.1:10345"), "server address (TF_ADDR)")
	fs.StringVar(&c.proto, "proto", envOr("TF_PROTO", "0.0"), "protocol version string (TF_PROTO)")
	fs.StringVar(&c.hash, "hash", envOr("TF_HASH", "testhash"), "hash identity (TF_HASH)")
	fs.StringVar(&c.pubkey, "pubkey", envOr("TF_PUBKEY", "tfdata/keys/public.pem"), "server public key PEM file (TF_PUBKEY)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "connect and handshake timeout")
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// options returns the client options for the connection flags.
func (c *connFlags) options() (client.Options, error) {
	pem, err := os.ReadFile(c.pubkey)
	if err != nil {
		return client.Options{}, fmt.Errorf("server public key: %w (set --pubkey or TF_PUBKEY)", err)
	}
	return client.Options{Proto: c.proto, Hash: c.hash, PublicKeyPEM: pem}, nil
}

// dial connects with the connection flags.
func (e *env) dial(ctx context.Context) (*client.Client, error) {
	opts, err := e.conn.options()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, e.conn.timeout)
	defer cancel()
	c, err := client.Dial(dctx, e.conn.addr, opts)
	if err != nil {
		return nil, err
	}
	if err := sessionSetup(dctx, c); err != nil { // LOGIN and INJAIL (auth.go)
		c.Close()
		return nil, err
	}
	return c, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	e := &env{stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("tf", flag.ContinueOnError)
	global.SetOutput(stderr)
	e.conn.register(global)
	global.Usage = func() { usage(stderr, global) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if global.NArg() == 0 {
		usage(stderr, global)
		return exitUsage
	}
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" {
		if len(rest) == 1 {
			if v, ok := verbs[rest[0]]; ok {
				fmt.Fprintf(stdout, "usage: tf [connection flags] %s\n\n%s\n", v.usage, v.summary)
				return exitOK
			}
		}
		usage(stdout, global)
		return exitOK
	}
	v, ok := verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "tf: unknown verb %q (see tf help)\n", name)
		return exitUsage
	}
	err := v.run(ctx, e, rest)
	return report(stderr, err)
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
		fmt.Fprintln(stderr, fe.Error())
		return exitFailed
	case errors.Is(err, tfproto.ErrUnknownCommand):
		fmt.Fprintln(stderr, "UNKNOWN")
		return exitUnknown
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	fmt.Fprintln(stderr, "tf:", err)
	return exitError
}

// usageError is a command-line mistake (exit code 2).
type usageError string

func (u usageError) Error() string { return string(u) }

func usage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintln(w, "usage: tf [connection flags] VERB [args]\n\nverbs:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-28s %s\n", verbs[n].usage, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nconnection flags:")
	global.SetOutput(w)
	global.PrintDefaults()
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 FAILED (code and text on stderr), 2 usage, 3 connection or local error, 4 UNKNOWN.")
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
	register("raw", verb{usage: "raw COMMAND [ARGS...]", summary: "send one protocol command line and print the reply (e.g. tf raw DATEF)",
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
	register("date", verb{usage: "date", summary: "print the server's UTC date (DATEF)",
		run: func(ctx context.Context, e *env, args []string) error {
			return withClient(ctx, e, func(c *client.Client) error {
				d, err := c.DateF(ctx)
				if err == nil {
					fmt.Fprintln(e.stdout, d)
				}
				return err
			})
		}})
	register("df", verb{usage: "df", summary: "print the bytes free on the server's data partition (FREESP)",
		run: func(ctx context.Context, e *env, args []string) error {
			return withClient(ctx, e, func(c *client.Client) error {
				n, err := c.FreeSpace(ctx)
				if err == nil {
					fmt.Fprintln(e.stdout, n)
				}
				return err
			})
		}})
	register("echo", verb{usage: "echo TEXT...", summary: "send ECHO and print the reply",
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
