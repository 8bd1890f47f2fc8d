package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/servertest"
	"github.com/tfd-project/tfd/tfproto"
)

func TestDescribeConfig(t *testing.T) {
	k := servertest.Key(t)
	pub, _ := tfproto.MarshalPublicKeyPEM(&k.PublicKey)
	dir := t.TempDir()
	file := filepath.Join(dir, "tfd.conf")
	text := "proto 0.0\nhash secret\ndbdir " + dir + "\nport 10345\nprivkey {" + string(tfproto.MarshalPrivateKeyPEM(k)) + "}\npubkey {" + string(pub) + "}\nrunbash\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := describeConfig(&out, cfg); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"listen:        :10345", "RSA-2048, valid", "matches the private key", "runbash", "config OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	bad := config.Default()
	bad.DBDir = filepath.Join(dir, "missing")
	bad.UserDB = filepath.Join(dir, "nousers")
	out.Reset()
	err = describeConfig(&out, bad)
	if err == nil || !strings.Contains(err.Error(), "dbdir") || !strings.Contains(err.Error(), "privkey") || !strings.Contains(err.Error(), "userdb") {
		t.Fatalf("bad config: %v", err)
	}
}
