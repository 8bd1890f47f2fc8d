// Package authtest creates throw-away system users for tests of the multi-user
// persona. It needs root and the shadow utilities (useradd, userdel); tests
// that call it are skipped, with the reason, when either is missing.
package authtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root with useradd available.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the multi-user persona tests need root (CI runs them as root)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("skipping: useradd not found; the multi-user persona tests create system users")
	}
}

// NewUser creates a system user (and its own group, named like it) with a
// unique name and no home directory, and deletes both when the test ends. It
// returns the name.
func NewUser(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	name := "tfdt" + hex.EncodeToString(b)
	run(t, "useradd", "-M", "-U", "-s", "/bin/false", name)
	t.Cleanup(func() {
		// userdel refuses while a thread still has the user's ids; a
		// session's persona thread exits just after its server stops, so
		// retry for a while, then force.
		for i := 0; exec.Command("userdel", name).Run() != nil; i++ {
			if i == 100 {
				if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
					t.Errorf("userdel -f %s: %v: %s", name, err, out)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		exec.Command("groupdel", name).Run() // when userdel left the group
	})
	return name
}

// run runs a shadow utility, retrying while another process holds the
// passwd/group lock (several test binaries may add users at once).
func run(t testing.TB, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for range 50 {
		out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "lock") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
}
