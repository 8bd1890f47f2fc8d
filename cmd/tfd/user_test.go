package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/auth"
)

// runUser runs tfd user with stdin and returns stdout and the error.
func runUser(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	userIn, userOut, userErr = strings.NewReader(stdin), &out, &errb
	t.Cleanup(func() { userIn, userOut, userErr = os.Stdin, os.Stdout, os.Stderr })
	err := userCmd(args)
	return out.String() + errb.String(), err
}

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "users")
	// A reference-format file with a plaintext entry.
	if err := os.WriteFile(db, []byte("legacy oldpw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		stdin string
		args  []string
		ok    bool
		out   string
	}{
		{"", []string{"--db", db, "list"}, true, "legacy\tplaintext"},
		{"pw one\n", []string{"--db", db, "add", "alice"}, true, "added alice"},
		{"x\n", []string{"--db", db, "add", "alice"}, false, ""},
		{"x\n", []string{"--db", db, "add", "bad name"}, false, ""},
		{"", []string{"--db", db, "add", "bob"}, false, ""}, // no password
		{"x\n", []string{"--db", db, "passwd", "nobody"}, false, ""},
		{"", []string{"--db", db, "del", "nobody"}, false, ""},
		{"", []string{"--db", db, "frobnicate"}, false, ""},
		{"", []string{"--db", db, "add"}, false, ""},
		{"", []string{"--db", db, "list", "extra"}, false, ""},
		{"", []string{"list"}, false, ""},
		{"", []string{"--db", db, "import"}, true, "hashed 1 plaintext"},
		{"", []string{"--db", db, "import"}, true, "nothing to do"},
		{"new pw\r\n", []string{"--db", db, "passwd", "alice"}, true, "changed the password of alice"},
		{"", []string{"--db", db, "list"}, true, "alice\targon2id"},
	}
	for _, s := range steps {
		out, err := runUser(t, s.stdin, s.args...)
		if (err == nil) != s.ok || !strings.Contains(out, s.out) {
			t.Errorf("tfd user %v: %q, %v", s.args, out, err)
		}
	}
	d, err := auth.Load(db)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Verify("alice", "new pw") || d.Verify("alice", "pw one") || !d.Verify("legacy", "oldpw") || len(d.Warnings()) != 0 {
		t.Fatalf("database after edits:\n%s", d.Bytes())
	}
	if st, _ := os.Stat(db); st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v", st.Mode())
	}
	if _, err := runUser(t, "", "--db", db, "del", "legacy"); err != nil {
		t.Fatal(err)
	}
	d, _ = auth.Load(db)
	if len(d.Users()) != 1 {
		t.Fatalf("after del: %v", d.Users())
	}

	// add creates a missing database; --config finds it through userdb.
	cfg := filepath.Join(dir, "tfd.conf")
	fresh := filepath.Join(dir, "fresh")
	os.WriteFile(cfg, []byte("userdb "+fresh+"\n"), 0o644)
	if _, err := runUser(t, "pw\n", "--config", cfg, "add", "carol"); err != nil {
		t.Fatal(err)
	}
	if d, err := auth.Load(fresh); err != nil || !d.Verify("carol", "pw") {
		t.Fatalf("fresh database: %v", err)
	}
	t.Setenv("TFD_DB", fresh)
	if out, err := runUser(t, "", "list"); err != nil || !strings.Contains(out, "carol") {
		t.Fatalf("TFD_DB: %q %v", out, err)
	}
	if _, err := runUser(t, "", "--db", fresh, "--config", cfg, "list"); err == nil {
		t.Fatal("--db and --config together accepted")
	}
}
