package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/servertest"
)

// runTF runs tf against srv and returns exit code, stdout and stderr.
func runTF(t *testing.T, srv *servertest.Server, args ...string) (int, string, string) {
	t.Helper()
	return runTFEnv(t, srv, nil, args...)
}

// runTFEnv is runTF with the environment tf sees given as a map.
func runTFEnv(t *testing.T, srv *servertest.Server, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(pub, srv.PublicKeyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	full := append([]string{"--addr", srv.Addr, "--pubkey", pub}, args...)
	return runWith(t, environ, full...)
}

// runTFEnv runs tf with no connection flags, the environment given as a map
// (nothing else is visible) and returns exit code, stdout and stderr.
func runWith(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := environ[k]; return v, ok }
	code := runEnv(context.Background(), args, &out, &errb, lookup, nil)
	return code, out.String(), errb.String()
}

func TestVerbs(t *testing.T) {
	srv := servertest.Start(t)
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"echo", "hello", "world"}, exitOK, "hello world\n", ""},
		{[]string{"raw", "ECHO", "x"}, exitOK, "x\n", ""},
		{[]string{"raw", "DTOF", "0"}, exitOK, "OK 1970-01-01 00:00:00\n", ""},
		{[]string{"raw", "DTOF"}, exitFailed, "", "FAILED 16 : Missing parameter from command."},
		{[]string{"raw", "NOSUCH"}, exitUnknown, "", "UNKNOWN"},
		{[]string{"raw"}, exitUsage, "", "raw needs a command"},
		{[]string{"nosuchverb"}, exitUsage, "", "unknown verb"},
		{[]string{"df", "-x"}, exitUsage, "", "df takes only -h"},
		{[]string{"df", "-h"}, exitOK, "", ""},
	}
	for _, tt := range tests {
		code, out, errs := runTF(t, srv, tt.args...)
		if code != tt.code || (tt.stdout != "" && out != tt.stdout) || !strings.Contains(errs, tt.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", tt.args, code, out, errs)
		}
	}
	code, out, _ := runTF(t, srv, "date")
	if code != 0 || len(out) != len("2006-01-02 15:04:05\n") {
		t.Errorf("date: %d %q", code, out)
	}
	code, _, errs := runTF(t, srv, "--pubkey", "/nonexistent", "date")
	if code != exitError || !strings.Contains(errs, "public key") {
		t.Errorf("missing key: %d %q", code, errs)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "prod.profile")
	if err := os.WriteFile(prof, []byte("# production\naddr profile:1\nhash profilehash\nproto 9.9\npubkey keys/pub.pem\ntimeout 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "tf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "tf", "profile"), []byte("addr home:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		want    []string // lines expected in tf config's output
	}{
		{"defaults", nil, nil, []string{
			"addr           127.0.0.1:10345 (default)", "proto          0.0 (default)",
			"hash           testhash (default)", "pubkey         tfdata/keys/public.pem (default)",
			"timeout        30s (default)", "user           - (default)"}},
		{"profile flag", nil, []string{"--profile", prof}, []string{
			"addr           profile:1 (profile)", "hash           profilehash (profile)", "proto          9.9 (profile)",
			"pubkey         " + filepath.Join(dir, "keys/pub.pem") + " (profile)", "timeout        5s (profile)"}},
		{"profile env", map[string]string{"TF_PROFILE": prof}, nil, []string{"addr           profile:1 (profile)"}},
		{"env over profile", map[string]string{"TF_PROFILE": prof, "TF_ADDR": "env:1", "TF_HASH": "envhash"}, nil, []string{
			"addr           env:1 (env)", "hash           envhash (env)", "proto          9.9 (profile)"}},
		{"flag over env", map[string]string{"TF_PROFILE": prof, "TF_ADDR": "env:1"}, []string{"--addr", "flag:1"}, []string{
			"addr           flag:1 (flag)", "hash           profilehash (profile)"}},
		{"home profile", map[string]string{"HOME": home}, nil, []string{"addr           home:1 (profile)"}},
		{"xdg beats home", map[string]string{"HOME": home, "XDG_CONFIG_HOME": t.TempDir()}, nil, []string{"addr           127.0.0.1:10345 (default)"}},
		{"explicit profile beats home", map[string]string{"HOME": home}, []string{"--profile", prof}, []string{"addr           profile:1 (profile)"}},
		{"password hidden", map[string]string{"TF_USER": "alice", "TF_PASSWORD": "s3cret"}, nil, []string{
			"user           alice (env)", "password-file  (hidden) (env TF_PASSWORD)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runWith(t, tt.environ, append(tt.args, "config")...)
			if code != exitOK {
				t.Fatalf("code %d stderr %q", code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
			if strings.Contains(out, "s3cret") {
				t.Error("config printed the password")
			}
		})
	}

	bad := filepath.Join(dir, "bad.profile")
	os.WriteFile(bad, []byte("adress x:1\n"), 0o644)
	for _, tt := range []struct {
		environ map[string]string
		args    []string
		code    int
		stderr  string
	}{
		{nil, []string{"--profile", bad, "config"}, exitUsage, `line 1: unknown key "adress"`},
		{nil, []string{"--profile", filepath.Join(dir, "missing"), "config"}, exitError, "no such file"},
		{map[string]string{"TF_TIMEOUT": "soon"}, []string{"config"}, exitUsage, `timeout "soon" (from env)`},
		{nil, []string{"--nosuchflag", "config"}, exitUsage, "flag provided but not defined"},
	} {
		code, _, errs := runWith(t, tt.environ, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.stderr) {
			t.Errorf("%v %v: code %d stderr %q", tt.environ, tt.args, code, errs)
		}
	}
}

// TestSettingsConnect: settings from the environment and a profile reach the
// server (a wrong hash from the profile is refused, the env's right one wins).
func TestSettingsConnect(t *testing.T) {
	srv := servertest.Start(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "server.pem")
	os.WriteFile(pub, srv.PublicKeyPEM, 0o644)
	prof := filepath.Join(dir, "p")
	os.WriteFile(prof, []byte("addr "+srv.Addr+"\npubkey server.pem\nhash wronghash\n"), 0o644)
	code, _, errs := runWith(t, map[string]string{"TF_PROFILE": prof}, "echo", "hi")
	if code != exitFailed || !strings.Contains(errs, "FAILED 3") {
		t.Errorf("wrong hash from profile: code %d stderr %q", code, errs)
	}
	code, out, errs := runWith(t, map[string]string{"TF_PROFILE": prof, "TF_HASH": "testhash"}, "echo", "hi")
	if code != exitOK || out != "hi\n" {
		t.Errorf("env hash: code %d stdout %q stderr %q", code, out, errs)
	}
	code, _, errs = runWith(t, map[string]string{"TF_PROFILE": prof}, "--hash", "testhash", "--proto", "1.0", "echo", "hi")
	if code != exitFailed || !strings.Contains(errs, "FAILED 2") {
		t.Errorf("flag proto: code %d stderr %q", code, errs)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runWith(t, nil, "--help")
	if code != exitOK || !strings.Contains(out, "usage: tf") || !strings.Contains(out, "Exit codes") {
		t.Errorf("--help: %d %q", code, out)
	}
	for name, v := range verbs {
		if v.examples == "" {
			t.Errorf("verb %s has no examples", name)
		}
		code, out, _ := runWith(t, nil, "help", name)
		if code != exitOK || !strings.Contains(out, "usage: tf [connection flags] "+v.usage) || !strings.Contains(out, "examples:") {
			t.Errorf("help %s: %d %q", name, code, out)
		}
	}
	if code, _, errs := runWith(t, nil, "help", "nosuch"); code != exitUsage || !strings.Contains(errs, "unknown verb") {
		t.Errorf("help nosuch: %d %q", code, errs)
	}
	if code, out, _ := runWith(t, nil, "date", "--help"); code != exitOK || !strings.Contains(out, "usage: tf [connection flags] date") {
		t.Errorf("date --help: %d %q", code, out)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 1<<64 - 1: "16.0 EiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLoginPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from file\nsecond line\n"), 0o600)
	otherFile := filepath.Join(dir, "pw2")
	os.WriteFile(otherFile, []byte("other\r\n"), 0o600)
	prof := filepath.Join(dir, "profile")
	os.WriteFile(prof, []byte("user bob\npassword-file pw2\n"), 0o600)
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		want    string
		wantErr string
	}{
		{"env password", map[string]string{"TF_USER": "a", "TF_PASSWORD": "p w"}, nil, "p w", ""},
		{"flag file beats env password", map[string]string{"TF_USER": "a", "TF_PASSWORD": "p"}, []string{"--password-file", pwFile}, "from file", ""},
		{"env password beats env file", map[string]string{"TF_USER": "a", "TF_PASSWORD": "p", "TF_PASSWORD_FILE": pwFile}, nil, "p", ""},
		{"env file", map[string]string{"TF_USER": "a", "TF_PASSWORD_FILE": pwFile}, nil, "from file", ""},
		{"profile file, CR stripped", map[string]string{"TF_PROFILE": prof}, nil, "other", ""},
		{"empty env password", map[string]string{"TF_USER": "a", "TF_PASSWORD": ""}, nil, "", ""},
		{"none and no terminal", map[string]string{"TF_USER": "a"}, nil, "", "needs a password"},
		{"missing file", map[string]string{"TF_USER": "a"}, []string{"--password-file", filepath.Join(dir, "nope")}, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g globalFlags
			fs := flag.NewFlagSet("tf", flag.ContinueOnError)
			g.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := g.resolve(fs, func(k string) (string, bool) { v, ok := tt.environ[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			e := &env{conn: c, stderr: io.Discard}
			pw, err := e.loginPassword()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || pw != tt.want {
				t.Fatalf("password %q %v, want %q", pw, err, tt.want)
			}
		})
	}
	if code, _, errs := runWith(t, nil, "login"); code != exitUsage || !strings.Contains(errs, "login needs a user") {
		t.Errorf("login without a user: %d %q", code, errs)
	}
}
