package config

import (
	"strings"
	"testing"
	"time"
)

const example = `proto 0.0
hash testhash
dbdir /var/tfdb/
port 10345
privkey {-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAmm8H
-----END RSA PRIVATE KEY-----}
xsntmex /var/tfdb/xsntmex
userdb /var/tfdb/lsr
defusr user 
tlb /var/tfdb/tlb
pubkey {-----BEGIN PUBLIC KEY-----
MIIBIjANBgkq
-----END PUBLIC KEY-----}
securefs
#locksys
`

func TestParseReferenceExample(t *testing.T) {
	c := Default()
	if err := c.Parse(strings.NewReader(example)); err != nil {
		t.Fatal(err)
	}
	if c.Proto != "0.0" || c.Hash != "testhash" || c.DBDir != "/var/tfdb/" || c.Port != 10345 {
		t.Fatalf("basic keys: %+v", c)
	}
	if c.DefUser != "user" || c.UserDB != "/var/tfdb/lsr" || c.TLB != "/var/tfdb/tlb" {
		t.Fatalf("optional keys: %q %q %q", c.DefUser, c.UserDB, c.TLB)
	}
	if want := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAmm8H\n-----END RSA PRIVATE KEY-----\n"; string(c.PrivKeyPEM) != want {
		t.Fatalf("privkey %q", c.PrivKeyPEM)
	}
	if !strings.HasPrefix(string(c.PubKeyPEM), "-----BEGIN PUBLIC KEY-----\n") {
		t.Fatalf("pubkey %q", c.PubKeyPEM)
	}
	if c.InJail {
		t.Fatal("injail set by a commented or absent line")
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "xsntmex") || !strings.Contains(c.Warnings[1], "securefs") {
		t.Fatalf("warnings %q", c.Warnings)
	}
	if c.ListenAddr() != ":10345" || c.MultiUser() {
		t.Fatalf("listen %q multi %v", c.ListenAddr(), c.MultiUser())
	}
}

// TestFlagsAreWholeLines: the reference finds flags as substrings anywhere
// (WIRE.md §9 item 14); tfd only honours a flag alone on its line.
func TestFlagsAreWholeLines(t *testing.T) {
	tests := []struct {
		name, in string
		injail   bool
	}{
		{"flag line", "injail\n", true},
		{"flag with spaces", "  injail  \n", true},
		{"inside a path", "dbdir /srv/injail/data\n", false},
		{"inside key material", "privkey {abcinjailxyz\n}\n", false},
		{"commented", "#injail\n", false},
		{"prefix of a longer word", "injailed\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if err := c.Parse(strings.NewReader(tt.in)); err != nil {
				t.Fatal(err)
			}
			if c.InJail != tt.injail {
				t.Fatalf("InJail = %v", c.InJail)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"port abc\n", "port 70000\n", "privkey {abc\n", "privkey abc\n", "proto\n",
		"proto " + strings.Repeat("x", 32) + "\n", "nprocmax -1\n",
	} {
		if err := Default().Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.Proto != "0.0" || c.Hash != "testhash" || c.HandshakeTimeout != 15*time.Second || c.ListenAddr() != DefaultListen {
		t.Fatalf("%+v", c)
	}
	c.UserDB = "x"
	if !c.MultiUser() {
		t.Fatal("userdb without defusr is multi-user")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add("privkey {\n")
	f.Add("injail\nport 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = Default().Parse(strings.NewReader(in))
	})
}
