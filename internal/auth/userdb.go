// Package auth holds tfd's authentication pieces: the user database that LOGIN
// checks (hashed passwords, with the reference daemon's plaintext format still
// read), the per-session persona that makes the kernel enforce a system user's
// file permissions without forking (persona_linux.go), and the INJAIL token
// check (jail.go).
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The user database file.
//
// Format: one "name SP secret" per line, as the reference daemon reads it
// (WIRE.md §5.29). The name is everything up to the first space and is matched
// exactly and whole (the reference took the first line containing "name " as a
// substring anywhere, so "xdaemon pw" let "daemon" log in; §9 item 11). The
// secret is the rest of the line with only the "\n" removed, so it may contain
// spaces (and a "\r" stays part of it, as in the reference):
//
//   - a secret starting with "$argon2id$" is a PHC-format argon2id hash
//     (written by `tfd user`); the consequence is that a plaintext password
//     starting with "$argon2id$" cannot be stored;
//   - anything else is a plaintext password (the reference's format). It still
//     works so existing deployments keep running, but tfd warns about every
//     such entry at start-up and `tfd user import` hashes them.
//
// Blank lines and lines starting with "#" are comments (the reference has no
// comments, but no valid reference entry starts with "#" or is empty). The first
// line for a name wins, as in the reference. Comments and line order survive a
// rewrite by `tfd user`.

// DB is a parsed user database.
type DB struct {
	lines []dbLine
}

type dbLine struct {
	raw    string // the line as read (for comments and malformed lines)
	name   string // "" for comments and malformed lines
	secret string
}

// Entry is one user of the database.
type Entry struct {
	Name string
	// Hashed is false for a reference-format plaintext password.
	Hashed bool
}

// Errors of the editing methods.
var (
	ErrExists   = errors.New("user already exists")
	ErrNoUser   = errors.New("no such user")
	ErrBadName  = errors.New("invalid user name")
	ErrBadPass  = errors.New("invalid password")
	errBadEntry = errors.New("malformed entry")
)

// Load reads the database file at path.
func Load(path string) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("user database: %w", err)
	}
	defer f.Close()
	db, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("user database %s: %w", path, err)
	}
	return db, nil
}

// maxLine bounds one line of the file (the reference's is 1023 bytes; hashed
// entries are about 100).
const maxLine = 64 * 1024

// Parse reads a database.
func Parse(r io.Reader) (*DB, error) {
	db := &DB{}
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadString('\n')
		if len(line) > maxLine {
			return nil, fmt.Errorf("line %d longer than %d bytes", len(db.lines)+1, maxLine)
		}
		if line != "" {
			db.lines = append(db.lines, parseLine(strings.TrimSuffix(line, "\n")))
		}
		if err == io.EOF {
			return db, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
	}
}

func parseLine(raw string) dbLine {
	if raw == "" || raw[0] == '#' {
		return dbLine{raw: raw}
	}
	name, secret, ok := strings.Cut(raw, " ")
	if !ok || name == "" || secret == "" {
		return dbLine{raw: raw}
	}
	return dbLine{raw: raw, name: name, secret: secret}
}

// Warnings describes what an operator should fix: every plaintext entry and
// every line that is neither an entry nor a comment.
func (db *DB) Warnings() []string {
	var w []string
	for i, l := range db.lines {
		switch {
		case l.name == "" && l.raw != "" && l.raw[0] != '#' && strings.TrimSpace(l.raw) != "":
			w = append(w, fmt.Sprintf("line %d is not \"name password\"; ignored", i+1))
		case l.name != "" && !isHash(l.secret):
			w = append(w, fmt.Sprintf("user %q has a plaintext password (line %d); run `tfd user import` to hash it", l.name, i+1))
		case l.name != "" && l.hashBroken():
			w = append(w, fmt.Sprintf("user %q has a malformed password hash (line %d); that user cannot log in", l.name, i+1))
		}
	}
	return w
}

func (l dbLine) hashBroken() bool {
	if !isHash(l.secret) {
		return false
	}
	_, err := parsePHC(strings.TrimRight(l.secret, " \t\r"))
	return err != nil
}

// Users lists the entries in file order (a repeated name only once, as the
// first line for a name is the one LOGIN uses).
func (db *DB) Users() []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, l := range db.lines {
		if l.name == "" || seen[l.name] {
			continue
		}
		seen[l.name] = true
		out = append(out, Entry{Name: l.name, Hashed: isHash(l.secret)})
	}
	return out
}

func (db *DB) find(name string) int {
	for i, l := range db.lines {
		if l.name == name {
			return i
		}
	}
	return -1
}

// dummy is verified against when the name is unknown, so an unknown user costs
// the same time as a wrong password (no user enumeration by timing).
var dummy = func() string {
	h, err := hashWith(DefaultParams, "tfd-dummy-password", make([]byte, saltLen))
	if err != nil {
		panic(err)
	}
	return h
}()

// Verify reports whether name is in the database with this password. The name
// must match an entry's name exactly; the password is compared in constant time
// (a hash is recomputed and compared with subtle.ConstantTimeCompare; a
// plaintext password is compared through SHA-256 digests so that not even its
// length leaks). An unknown name runs the same hash work as a known one.
func (db *DB) Verify(name, password string) bool {
	i := db.find(name)
	if i < 0 || name == "" {
		verifyHash(dummy, password)
		return false
	}
	secret := db.lines[i].secret
	if isHash(secret) {
		return verifyHash(strings.TrimRight(secret, " \t\r"), password)
	}
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ValidName reports whether name can be a database user: non-empty, at most 255
// bytes, no spaces or control characters (LOGIN ends the name at the first
// space), and not starting with "#" (a comment).
func ValidName(name string) error {
	if name == "" || len(name) > 255 || name[0] == '#' {
		return fmt.Errorf("%w %q", ErrBadName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w %q: no spaces or control characters", ErrBadName, name)
		}
	}
	return nil
}

func validPassword(pw string) error {
	if pw == "" {
		return fmt.Errorf("%w: empty", ErrBadPass)
	}
	if strings.ContainsAny(pw, "\n\x00") {
		return fmt.Errorf("%w: contains a newline or NUL", ErrBadPass)
	}
	return nil
}

// Add appends a user with a hashed password.
func (db *DB) Add(name, password string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if db.find(name) >= 0 {
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	l, err := hashedLine(name, password)
	if err != nil {
		return err
	}
	db.lines = append(db.lines, l)
	return nil
}

// SetPassword replaces a user's password with a hash of password.
func (db *DB) SetPassword(name, password string) error {
	i := db.find(name)
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	l, err := hashedLine(name, password)
	if err != nil {
		return err
	}
	db.lines[i] = l
	return nil
}

// Delete removes every line of a user.
func (db *DB) Delete(name string) error {
	kept := db.lines[:0]
	found := false
	for _, l := range db.lines {
		if l.name == name {
			found = true
			continue
		}
		kept = append(kept, l)
	}
	db.lines = kept
	if !found {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	return nil
}

// Import hashes every plaintext password in place and returns how many it
// converted.
func (db *DB) Import() (int, error) {
	n := 0
	for i, l := range db.lines {
		if l.name == "" || isHash(l.secret) {
			continue
		}
		h, err := hashedLine(l.name, l.secret)
		if err != nil {
			return n, fmt.Errorf("user %s: %w", l.name, err)
		}
		db.lines[i] = h
		n++
	}
	return n, nil
}

func hashedLine(name, password string) (dbLine, error) {
	if err := validPassword(password); err != nil {
		return dbLine{}, err
	}
	h, err := HashPassword(password)
	if err != nil {
		return dbLine{}, err
	}
	return dbLine{raw: name + " " + h, name: name, secret: h}, nil
}

// Bytes returns the file contents.
func (db *DB) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range db.lines {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Save writes the database to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with mode 0600, so a LOGIN never
// reads half a file.
func (db *DB) Save(path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save user database: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save user database: %w", err)
	}
	if _, err := tmp.Write(db.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("save user database: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save user database: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save user database: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save user database: %w", err)
	}
	return nil
}
