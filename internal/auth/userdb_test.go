package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerify(t *testing.T) {
	hashed := mustHash(t, "s3cret pass")
	db, err := Parse(strings.NewReader(strings.Join([]string{
		"# comment line",
		"",
		"alice alicepw",
		"bob " + hashed,
		"xdaemon pw2",
		"carol pass with spaces",
		"dave crlf\r",
		"alice second-line-ignored",
		"eve $argon2id$v=19$m=garbage",
		"nopassword",
		"trailing ",
		" leadingspace pw",
	}, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pw string
		want     bool
	}{
		{"alice", "alicepw", true},          // plaintext entry
		{"bob", "s3cret pass", true},        // hashed entry
		{"bob", "s3cret pas", false},        // wrong password
		{"bob", "s3cret pass ", false},      // trailing space matters
		{"bob", hashed, false},              // the hash itself is not the password
		{"carol", "pass with spaces", true}, // the rest of the line
		{"carol", "pass", false},
		{"daemon", "pw2", false},                // substring of "xdaemon" must not match (WIRE §9.11)
		{"xdaemon", "pw2", true},                // the real owner of that line
		{"aemon", "pw2", false},                 // suffix of a name
		{"xdaemo", "pw2", false},                // prefix of a name
		{"dave", "crlf", false},                 // "\r" stays part of the password, as in the reference
		{"dave", "crlf\r", true},                //
		{"alice", "second-line-ignored", false}, // first line wins
		{"eve", "anything", false},              // malformed hash never verifies
		{"nopassword", "", false},
		{"trailing", "", false},
		{"", "pw", false},
		{"leadingspace", "pw", false},
		{"# comment", "line", false},
		{"nobody", "alicepw", false},
		{"ALICE", "alicepw", false}, // names are case-sensitive
	}
	for _, tt := range tests {
		if got := db.Verify(tt.name, tt.pw); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.name, tt.pw, got, tt.want)
		}
	}
	users := db.Users()
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, ","); got != "alice,bob,xdaemon,carol,dave,eve" {
		t.Errorf("Users = %s", got)
	}
	warn := strings.Join(db.Warnings(), "\n")
	for _, want := range []string{`user "alice" has a plaintext`, `user "carol" has a plaintext`, `user "eve" has a malformed`, "line 10 is not", "line 11 is not", "line 12 is not"} {
		if !strings.Contains(warn, want) {
			t.Errorf("warnings lack %q:\n%s", want, warn)
		}
	}
	if strings.Contains(warn, `"bob"`) {
		t.Errorf("hashed entry warned about:\n%s", warn)
	}
}

func TestEditAndSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	orig := "# users of the test\nold plainpw\nxold other\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Add("new", "newpw"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name, pw string
		want     error
	}{
		{"new", "x", ErrExists},
		{"old", "x", ErrExists},
		{"", "x", ErrBadName},
		{"a b", "x", ErrBadName},
		{"#x", "x", ErrBadName},
		{"tab\tname", "x", ErrBadName},
		{"ok", "", ErrBadPass},
		{"ok", "line\nbreak", ErrBadPass},
	} {
		if err := db.Add(bad.name, bad.pw); !errors.Is(err, bad.want) {
			t.Errorf("Add(%q, %q) = %v, want %v", bad.name, bad.pw, err, bad.want)
		}
	}
	if err := db.SetPassword("nobody", "x"); !errors.Is(err, ErrNoUser) {
		t.Errorf("SetPassword(nobody) = %v", err)
	}
	if err := db.Delete("nobody"); !errors.Is(err, ErrNoUser) {
		t.Errorf("Delete(nobody) = %v", err)
	}
	n, err := db.Import()
	if err != nil || n != 2 {
		t.Fatalf("Import = %d, %v; want 2 conversions", n, err)
	}
	if err := db.SetPassword("xold", "changed"); err != nil {
		t.Fatal(err)
	}
	if err := db.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved file mode %v %v", st.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "# users of the test\nold $argon2id$") || strings.Contains(string(raw), "plainpw") {
		t.Fatalf("saved file:\n%s", raw)
	}
	db2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(db2.Warnings()) != 0 {
		t.Errorf("warnings after import: %v", db2.Warnings())
	}
	for _, c := range []struct {
		name, pw string
		want     bool
	}{
		{"old", "plainpw", true}, {"xold", "other", false}, {"xold", "changed", true}, {"new", "newpw", true},
	} {
		if got := db2.Verify(c.name, c.pw); got != c.want {
			t.Errorf("after save: Verify(%q, %q) = %v", c.name, c.pw, got)
		}
	}
	if err := db2.Delete("old"); err != nil {
		t.Fatal(err)
	}
	if db2.Verify("old", "plainpw") {
		t.Error("deleted user still verifies")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("Save left temporary files: %v", entries)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
	long := "u " + strings.Repeat("p", maxLine+1)
	if _, err := Parse(strings.NewReader(long)); err == nil {
		t.Fatal("over-long line accepted")
	}
}

func TestHashFormat(t *testing.T) {
	a, b := mustHash(t, "pw"), mustHash(t, "pw")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", a)
	}
	if !verifyHash(a, "pw") || verifyHash(a, "pW") {
		t.Fatal("verifyHash")
	}
	// Malformed and hostile parameter strings never verify and never run away.
	good, _ := parsePHC(a)
	_ = good
	salt := strings.Split(a, "$")[4]
	key := strings.Split(a, "$")[5]
	for _, bad := range []string{
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=999,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1,m=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAA",
		"$argon2id$v=19$x=1,t=2,p=1$" + salt + "$" + key,
	} {
		if _, err := parsePHC(bad); err == nil {
			t.Errorf("parsePHC accepted %q", bad)
		}
		if verifyHash(bad, "pw") {
			t.Errorf("verifyHash accepted %q", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("alice pw\nbob $argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n# c\n\n")
	f.Add("x\r\ny z\n")
	f.Fuzz(func(t *testing.T, in string) {
		db, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		db.Warnings()
		for _, u := range db.Users() {
			if strings.ContainsAny(u.Name, " \n") || u.Name == "" {
				t.Fatalf("bad name %q", u.Name)
			}
		}
		// Writing back is lossless.
		db2, err := Parse(strings.NewReader(string(db.Bytes())))
		if err != nil || string(db2.Bytes()) != string(db.Bytes()) {
			t.Fatalf("round trip changed the file")
		}
	})
}

// BenchmarkVerify measures one LOGIN password check (argon2id with
// DefaultParams).
func BenchmarkVerify(b *testing.B) {
	db, err := Parse(strings.NewReader("alice " + mustHash(b, "pw") + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !db.Verify("alice", "pw") {
			b.Fatal("no match")
		}
	}
}
