package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tfd-project/tfd/internal/auth"
	"github.com/tfd-project/tfd/internal/config"
)

func init() {
	register("user", subcommand{summary: "manage the multi-user database: add, del, passwd, list, import", run: userCmd})
}

// Where tfd user reads passwords and writes its output (replaced in tests).
var (
	userIn  io.Reader = os.Stdin
	userOut io.Writer = os.Stdout
	userErr io.Writer = os.Stderr
)

const userUsage = `usage: tfd user [--db FILE | --config FILE] COMMAND [NAME]

commands:
  add NAME      add a user (the password is read from the terminal, twice,
                or as the first line of standard input)
  passwd NAME   set a user's password
  del NAME      remove a user
  list          list the users and whether each password is hashed
  import        hash every plaintext (reference-format) password in place

The database is the file the config's "userdb" names (--config), or --db.
Passwords are stored as argon2id hashes; each user must also be a system user
of this machine, whose file permissions the session takes after LOGIN.
`

func userCmd(args []string) error {
	fset := flag.NewFlagSet("tfd user", flag.ContinueOnError)
	fset.SetOutput(userErr)
	db := fset.String("db", "", "user database file")
	cfgFile := fset.String("config", "", "reference-format config file whose userdb to use")
	fset.Usage = func() { fmt.Fprint(fset.Output(), userUsage, "\nflags:\n"); fset.PrintDefaults() }
	if err := fset.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fset); err != nil {
		return err
	}
	path, err := userDBPath(*db, *cfgFile)
	if err != nil {
		return err
	}
	rest := fset.Args()
	if len(rest) == 0 {
		fset.Usage()
		return errors.New("user: missing command")
	}
	verb, rest := rest[0], rest[1:]
	needName := map[string]bool{"add": true, "passwd": true, "del": true}
	switch {
	case needName[verb] && len(rest) != 1:
		return fmt.Errorf("user %s needs exactly one NAME", verb)
	case (verb == "list" || verb == "import") && len(rest) != 0:
		return fmt.Errorf("user %s takes no arguments", verb)
	}

	d, err := auth.Load(path)
	if errors.Is(err, fs.ErrNotExist) && verb == "add" {
		d, err = auth.Parse(strings.NewReader(""))
	}
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		for _, u := range d.Users() {
			kind := "argon2id"
			if !u.Hashed {
				kind = "plaintext (run tfd user import)"
			}
			fmt.Fprintf(userOut, "%s\t%s\n", u.Name, kind)
		}
		return nil
	case "import":
		n, err := d.Import()
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(userOut, "no plaintext passwords; nothing to do")
			return nil
		}
		if err := d.Save(path); err != nil {
			return err
		}
		fmt.Fprintf(userOut, "hashed %d plaintext password(s) in %s\n", n, path)
		return nil
	case "del":
		if err := d.Delete(rest[0]); err != nil {
			return err
		}
		if err := d.Save(path); err != nil {
			return err
		}
		fmt.Fprintf(userOut, "removed %s\n", rest[0])
		return nil
	case "add", "passwd":
		name := rest[0]
		if err := auth.ValidName(name); err != nil {
			return err
		}
		pw, err := readPassword(name)
		if err != nil {
			return err
		}
		if verb == "add" {
			err = d.Add(name, pw)
		} else {
			err = d.SetPassword(name, pw)
		}
		if err != nil {
			return err
		}
		if err := d.Save(path); err != nil {
			return err
		}
		if _, err := auth.LookupPersona(name); err != nil {
			fmt.Fprintf(userErr, "warning: %v: LOGIN as %s will fail until it is a system user (useradd)\n", err, name)
		}
		fmt.Fprintf(userOut, "%s %s in %s\n", map[string]string{"add": "added", "passwd": "changed the password of"}[verb], name, path)
		return nil
	}
	fset.Usage()
	return fmt.Errorf("user: unknown command %q", verb)
}

// userDBPath picks the database: --db, else the config's userdb.
func userDBPath(db, cfgFile string) (string, error) {
	switch {
	case db != "" && cfgFile != "":
		return "", errors.New("user: give --db or --config, not both")
	case db != "":
		return db, nil
	case cfgFile != "":
		c, err := config.LoadFile(cfgFile)
		if err != nil {
			return "", err
		}
		if c.UserDB == "" {
			return "", fmt.Errorf("config %s has no userdb", cfgFile)
		}
		return c.UserDB, nil
	}
	return "", errors.New("user: say which database: --db FILE or --config FILE (or TFD_DB / TFD_CONFIG)")
}

// readPassword asks twice on a terminal (without echo), or reads the first line
// of standard input when it is not a terminal (for scripts).
func readPassword(name string) (string, error) {
	if f, ok := userIn.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(userErr, "password for %s: ", name)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(userErr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprintf(userErr, "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(userErr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(userIn).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}
