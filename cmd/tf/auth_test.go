package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/auth"
	"github.com/tfd-project/tfd/internal/auth/authtest"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
)

func TestAuthVerbs(t *testing.T) {
	a := authtest.NewUser(t)
	h, err := auth.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "users")
	os.WriteFile(db, []byte(a+" "+h+"\n"), 0o600)
	srv := servertest.Start(t, func(c *config.Config) {
		c.UserDB = db
		c.InJail = true
		c.LoginFailDelay = time.Millisecond
	})
	jail := filepath.Join(srv.Root, "j")
	os.MkdirAll(jail, 0o777)
	os.Chmod(jail, 0o777)
	os.WriteFile(filepath.Join(jail, "jail.key"), []byte("tok\n"), 0o644)
	os.WriteFile(filepath.Join(jail, "f"), []byte("x"), 0o644)
	p, _ := auth.LookupPersona(a)
	os.Chown(filepath.Join(jail, "f"), p.UID, p.GID)

	if code, _, errs := runTF(t, srv, "date"); code != exitFailed || !strings.Contains(errs, "FAILED 38") {
		t.Fatalf("without TF_USER: %d %q", code, errs)
	}
	environ := map[string]string{"TF_USER": a, "TF_PASSWORD": "wrong"}
	if code, _, errs := runTFEnv(t, srv, environ, "date"); code != exitFailed || !strings.Contains(errs, "FAILED 37") {
		t.Fatalf("wrong password: %d %q", code, errs)
	}
	environ["TF_PASSWORD"] = "pw"
	if code, _, errs := runTFEnv(t, srv, environ, "date"); code != exitFailed || !strings.Contains(errs, "FAILED 50") {
		t.Fatalf("without INJAIL: %d %q", code, errs)
	}
	// tf login only logs in (no INJAIL needed for that).
	if code, out, errs := runTFEnv(t, srv, environ, "login"); code != exitOK || out != "logged in as "+a+" at "+srv.Addr+"\n" {
		t.Fatalf("tf login: %d %q %q", code, out, errs)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("pw\n"), 0o600)
	if code, _, errs := runTF(t, srv, "--user", a, "--password-file", pwFile, "login"); code != exitOK {
		t.Fatalf("tf --user --password-file login: %d %q", code, errs)
	}
	if code, _, errs := runTF(t, srv, "--user", a, "--password-file", filepath.Join(t.TempDir(), "none"), "login"); code != exitError || !strings.Contains(errs, "password file") {
		t.Fatalf("missing password file: %d %q", code, errs)
	}
	if code, _, errs := runTFEnv(t, srv, map[string]string{"TF_USER": a, "TF_PASSWORD": "nope"}, "login"); code != exitFailed || !strings.HasPrefix(errs, "FAILED 37 ") {
		t.Fatalf("tf login, wrong password: %d %q", code, errs)
	}
	environ["TF_JAIL_TOKEN"] = "tok"
	environ["TF_JAIL"] = "j"
	if code, out, errs := runTFEnv(t, srv, environ, "ls"); code != exitOK || !strings.Contains(out, "f\n") {
		t.Fatalf("ls as %s in the jail: %d %q %q", a, code, out, errs)
	}
	// The same from flags.
	if code, _, errs := runTFEnv(t, srv, map[string]string{"TF_PASSWORD": "pw"}, "--user", a, "--jail-token", "tok", "--jail", "j", "stat", "f"); code != exitOK {
		t.Fatalf("jail from flags: %d %q", code, errs)
	}
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"chmod", "640", "f"}, exitOK, ""},
		{[]string{"chmod", "9", "f"}, exitUsage, "not an octal mode"},
		{[]string{"chmod", "640"}, exitUsage, "needs MODE and PATH"},
		{[]string{"chmod", "600", "jail.key"}, exitFailed, "FAILED 1"},
		{[]string{"chown", "root", "root", "f"}, exitFailed, "FAILED 44"},
		{[]string{"chown", "tfd-no-such-user", "root", "f"}, exitFailed, "FAILED 42"},
		{[]string{"chown", "root", "f"}, exitUsage, "needs USER, GROUP and PATH"},
	}
	for _, tt := range tests {
		code, _, errs := runTFEnv(t, srv, environ, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stderr %q", tt.args, code, errs)
		}
	}
	if st, _ := os.Stat(filepath.Join(jail, "f")); st.Mode().Perm() != 0o640 {
		t.Errorf("f mode %v", st.Mode())
	}
}
