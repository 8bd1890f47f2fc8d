// Command tfd is the TFProtocol 2.4.1 server.
//
//	tfd [serve] [flags]   serve (the default; see tfd serve -h)
//	tfd keygen DIR        write a new RSA-2048 key pair into DIR
//	tfd proxy --to H:P    transparent proxy to another server (see tfd proxy -h)
//	tfd version           print the version
//
// With no flags, tfd serves on the embedded default: ./tfdata holds the key pair
// (made on first start) and the data root, the listener is 127.0.0.1:10345,
// proto "0.0", hash "testhash", single-user.
package main

import (
	"fmt"
	"os"
	"sort"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// A subcommand is one verb of tfd. Each lives in its own file and registers
// itself from init.
type subcommand struct {
	summary string
	run     func(args []string) error
}

var subcommands = map[string]subcommand{}

func register(name string, sc subcommand) {
	if _, dup := subcommands[name]; dup {
		panic("tfd: subcommand " + name + " registered twice")
	}
	subcommands[name] = sc
}

func main() {
	args := os.Args[1:]
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage()
		return
	}
	sc, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "tfd: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	if err := sc.run(args); err != nil {
		fmt.Fprintln(os.Stderr, "tfd:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tfd [command] [flags]\n\ncommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'tfd COMMAND -h' for a command's flags.")
}

func init() {
	register("version", subcommand{summary: "print the version", run: func([]string) error {
		fmt.Println("tfd", version, "(TFProtocol 2.4.1)")
		return nil
	}})
}
