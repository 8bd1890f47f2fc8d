package vfs

import (
	"fmt"
	"path"
	"strings"
)

// JailKeyName is the INJAIL token file (WIRE.md §5.35). In the reference it can
// be listed and downloaded from inside the jail it guards (§9 item 9); tfd hides
// it from the jailed session.
const JailKeyName = "jail.key"

// Jail returns a new FS rooted at dir, a name relative to f's root (as
// returned by Clean), for INJAIL. The new root is opened through f's os.Root
// (Root.OpenRoot), so dir cannot lead outside f, and the jail can never be left:
// ".." and symlinks are confined to the new root. The jail's own key file is
// hidden (see Hidden). f stays open; the caller closes it when it switches.
func (f *FS) Jail(dir string) (*FS, error) {
	r, err := f.root.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("jail %s: %w", dir, MapError(err))
	}
	return &FS{root: r, dir: path.Join(f.dir, dir), hidden: JailKeyName}, nil
}

// Hidden reports whether name (root-relative, as returned by Clean) is hidden
// from the client: commands answer as for a name they may not use (FAILED 1)
// and listings leave it out. Today that is only a jail's key file at the top
// of the jail; the match ignores case so a case-insensitive filesystem cannot
// expose it under another spelling.
func (f *FS) Hidden(name string) bool {
	return f.hidden != "" && strings.EqualFold(name, f.hidden)
}
