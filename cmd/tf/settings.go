package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tfd-project/tfd/client"
)

// Connection settings. Each one comes, in this order of precedence, from its
// command-line flag, its environment variable, the profile file, or its
// default. The profile is --profile FILE, else TF_PROFILE, else
// $XDG_CONFIG_HOME/tf/profile (~/.config/tf/profile) when that file exists.
//
// A profile is "key value" lines; "#" starts a comment line; the keys are the
// flag names (addr, proto, hash, pubkey, timeout, user, password-file,
// jail-token, jail).
// Relative paths in a profile are relative to the profile's directory.

// setting describes one connection setting.
type setting struct {
	name string // flag and profile key
	env  string // environment variable
	def  string // default value
	path bool   // a file path (relative profile values are made absolute)
	help string
}

var settingTable = []setting{
	{name: "addr", env: "TF_ADDR", def: "127.0.0.1:10345", help: "server address host:port"},
	{name: "proto", env: "TF_PROTO", def: "0.0", help: "protocol version string the server expects"},
	{name: "hash", env: "TF_HASH", def: "testhash", help: "hash identity the server expects"},
	{name: "pubkey", env: "TF_PUBKEY", def: "tfdata/keys/public.pem", path: true, help: "server public key (PEM file)"},
	{name: "timeout", env: "TF_TIMEOUT", def: "30s", help: "connect and handshake timeout"},
	{name: "user", env: "TF_USER", help: "log in as this user before running the verb (multi-user servers)"},
	{name: "password-file", env: "TF_PASSWORD_FILE", path: true, help: "file whose first line is the password (TF_PASSWORD holds the password itself)"},
	{name: "jail-token", env: "TF_JAIL_TOKEN", help: "INJAIL with this token after the handshake (and LOGIN)"},
	{name: "jail", env: "TF_JAIL", help: "the directory to INJAIL into (with --jail-token)"},
}

// connFlags are the resolved connection settings shared by every verb.
type connFlags struct {
	addr, proto, hash, pubkey string
	timeout                   time.Duration
	user, passwordFile        string
	// password is TF_PASSWORD; it wins over a password file from the
	// environment or the profile, not over --password-file.
	password string
	// profile is the profile file read ("" = none).
	profile string
	// source says where each setting came from: flag, env, profile or default.
	source map[string]string
	// values holds each setting as resolved, by name.
	values map[string]string
}

// globalFlags holds the raw command-line values before resolution.
type globalFlags struct {
	values  map[string]*string
	profile string
	quiet   bool
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	g.values = map[string]*string{}
	for _, s := range settingTable {
		help := s.help + " (" + s.env
		if s.def != "" {
			help += `; default "` + s.def + `"`
		}
		help += ")"
		g.values[s.name] = fs.String(s.name, "", help)
	}
	fs.StringVar(&g.profile, "profile", "", "profile file of \"key value\" lines (TF_PROFILE; default ~/.config/tf/profile if it exists)")
	fs.BoolVar(&g.quiet, "q", false, "quiet: no progress bars")
}

// resolve applies the precedence flag > environment > profile > default.
// lookup reads the environment (os.LookupEnv outside tests).
func (g *globalFlags) resolve(fs *flag.FlagSet, lookup func(string) (string, bool)) (connFlags, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	c := connFlags{source: map[string]string{}, values: map[string]string{}}

	profile := g.profile
	explicit := given["profile"]
	if !explicit {
		if v, ok := lookup("TF_PROFILE"); ok && v != "" {
			profile, explicit = v, true
		}
	}
	if !explicit {
		if p := defaultProfile(lookup); p != "" {
			if _, err := os.Stat(p); err == nil {
				profile = p
			}
		}
	}
	var prof map[string]string
	if profile != "" {
		var err error
		prof, err = readProfile(profile)
		if err != nil {
			return c, err
		}
		c.profile = profile
	}
	for _, s := range settingTable {
		v, src := s.def, "default"
		if pv, ok := prof[s.name]; ok {
			v, src = pv, "profile"
			if s.path && pv != "" && !filepath.IsAbs(pv) {
				v = filepath.Join(filepath.Dir(profile), pv)
			}
		}
		if ev, ok := lookup(s.env); ok {
			v, src = ev, "env"
		}
		if given[s.name] {
			v, src = *g.values[s.name], "flag"
		}
		c.values[s.name], c.source[s.name] = v, src
	}
	c.addr, c.proto, c.hash, c.pubkey = c.values["addr"], c.values["proto"], c.values["hash"], c.values["pubkey"]
	c.user, c.passwordFile = c.values["user"], c.values["password-file"]
	d, err := time.ParseDuration(c.values["timeout"])
	if err != nil || d <= 0 {
		return c, usageError(fmt.Sprintf("timeout %q (from %s) is not a positive duration like 30s", c.values["timeout"], c.source["timeout"]))
	}
	c.timeout = d
	if pw, ok := lookup("TF_PASSWORD"); ok && c.source["password-file"] != "flag" {
		c.password, c.passwordFile = pw, ""
		c.source["password-file"] = "env TF_PASSWORD"
	}
	return c, nil
}

// defaultProfile is $XDG_CONFIG_HOME/tf/profile, else ~/.config/tf/profile.
func defaultProfile(lookup func(string) (string, bool)) string {
	if d, ok := lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "tf", "profile")
	}
	if h, ok := lookup("HOME"); ok && h != "" {
		return filepath.Join(h, ".config", "tf", "profile")
	}
	return ""
}

// readProfile parses a profile file.
func readProfile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	known := map[string]bool{}
	for _, s := range settingTable {
		known[s.name] = true
	}
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		if !known[key] {
			return nil, usageError(fmt.Sprintf("profile %s line %d: unknown key %q (known: addr proto hash pubkey timeout user password-file jail-token jail)", path, n, key))
		}
		m[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return m, nil
}

// options returns the client options for the connection settings.
func (c *connFlags) options() (client.Options, error) {
	pem, err := os.ReadFile(c.pubkey)
	if err != nil {
		return client.Options{}, fmt.Errorf("server public key: %w (set --pubkey or TF_PUBKEY)", err)
	}
	return client.Options{Proto: c.proto, Hash: c.hash, PublicKeyPEM: pem}, nil
}

// loginPassword returns the password for --user: TF_PASSWORD, the password
// file's first line, or (when stdin is a terminal) a prompt.
func (e *env) loginPassword() (string, error) {
	c := &e.conn
	switch {
	case c.password != "" || c.source["password-file"] == "env TF_PASSWORD":
		return c.password, nil
	case c.passwordFile != "":
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	if e.stdin != nil && term.IsTerminal(int(e.stdin.Fd())) {
		fmt.Fprintf(e.stderr, "Password for %s@%s: ", c.user, c.addr)
		pw, err := term.ReadPassword(int(e.stdin.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(pw), nil
	}
	return "", usageError("--user " + c.user + " needs a password: set --password-file, TF_PASSWORD or TF_PASSWORD_FILE")
}

// dial connects with the connection settings and, when a user is set, logs in.
func (e *env) dial(ctx context.Context) (*client.Client, error) {
	opts, err := e.conn.options()
	if err != nil {
		return nil, err
	}
	var pw string
	if e.conn.user != "" {
		if pw, err = e.loginPassword(); err != nil {
			return nil, err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, e.conn.timeout)
	defer cancel()
	c, err := client.Dial(dctx, e.conn.addr, opts)
	if err != nil {
		return nil, err
	}
	if err := e.sessionSetup(dctx, c, pw); err != nil { // LOGIN and INJAIL (auth.go)
		c.Close()
		return nil, err
	}
	return c, nil
}

func init() {
	register("login", verb{usage: "login", summary: "check the credentials of --user (TF_USER) and the password: log in, then log out",
		help: `With --user (or TF_USER, or "user" in the profile) every verb logs in
before it runs; tf login only checks that the credentials work. The password
comes from TF_PASSWORD, --password-file (TF_PASSWORD_FILE, "password-file" in
the profile), or a prompt when stdin is a terminal.`,
		examples: `tf --user alice --password-file ~/.tfpass login
TF_USER=alice TF_PASSWORD=secret tf login && echo ok`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usageError("login takes no arguments; set --user or TF_USER")
			}
			if e.conn.user == "" {
				return usageError("login needs a user: --user NAME or TF_USER")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				_, err := fmt.Fprintf(e.stdout, "logged in as %s at %s\n", e.conn.user, e.conn.addr)
				return err
			})
		}})
	register("config", verb{usage: "config", summary: "print the connection settings in effect and where each came from",
		examples: `tf config
TF_ADDR=files.example.com:10345 tf --profile prod.profile config`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usageError("config takes no arguments")
			}
			return printSettings(e.stdout, &e.conn)
		}})
}

// printSettings writes "name value (source)" lines, the password hidden.
func printSettings(w io.Writer, c *connFlags) error {
	if c.profile != "" {
		fmt.Fprintf(w, "%-14s %s\n", "profile", c.profile)
	}
	for _, s := range settingTable {
		v := c.values[s.name]
		if s.name == "password-file" && c.source[s.name] == "env TF_PASSWORD" {
			v = "(hidden)"
		}
		if v == "" {
			v = "-"
		}
		if _, err := fmt.Fprintf(w, "%-14s %s (%s)\n", s.name, v, c.source[s.name]); err != nil {
			return err
		}
	}
	return nil
}

// errInterrupted is returned when a signal stopped a verb.
var errInterrupted = errors.New("interrupted")
