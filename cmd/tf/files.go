package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/tfproto"
)

// File verbs: ls, stat, mkdir, rm, touch, mv, cp, cat.

// typeName spells an FSTAT or listing type letter.
func typeName(t byte) string {
	switch t {
	case 'F':
		return "file"
	case 'D':
		return "directory"
	}
	return "other"
}

const timeLayout = "2006-01-02 15:04:05"

func init() {
	register("ls", verb{usage: "ls [-R] [-l] [DIR]", summary: "list a directory (LS; -R the whole tree with LSR)",
		help: `Prints one entry per line, relative to DIR (default: the data root);
directories end with "/". Entries that are neither files nor directories
(symlinks, FIFOs, sockets) end with "@". -l adds the type letter (F, D, U),
the size in bytes and the modification time (UTC), one FSTAT per entry.`,
		examples: `tf ls
tf ls -R docs
tf ls -l docs
tf ls docs | grep -c '\.pdf$'`,
		run: func(ctx context.Context, e *env, args []string) error {
			var rec, long bool
			fs, err := parseFlags(e, "ls", args, func(fs *flag.FlagSet) {
				fs.BoolVar(&rec, "R", false, "recursive (LSR)")
				fs.BoolVar(&long, "l", false, "long format: type, size, mtime")
			})
			if err != nil {
				return err
			}
			if fs.NArg() > 1 {
				return usageError("ls takes at most one DIR")
			}
			dir := fs.Arg(0)
			return withClient(ctx, e, func(c *client.Client) error {
				var ents []client.Entry
				var err error
				if rec {
					ents, err = c.ListRecursive(ctx, dir)
				} else {
					ents, err = c.List(ctx, dir)
				}
				if err != nil {
					return err
				}
				for _, en := range ents {
					name := en.Name
					switch en.Type {
					case client.EntryDir:
						name += "/"
					case client.EntryOther:
						name += "@"
					}
					if !long {
						fmt.Fprintln(e.stdout, name)
						continue
					}
					fi, err := c.Stat(ctx, path.Join(dir, en.Name))
					if err != nil {
						// Gone since the listing, or a dangling link.
						fmt.Fprintf(e.stdout, "%c %12s %19s %s\n", en.Type, "?", "?", name)
						continue
					}
					fmt.Fprintf(e.stdout, "%c %12d %19s %s\n", en.Type, fi.Size, fi.Mtime.UTC().Format(timeLayout), name)
				}
				return nil
			})
		}})
	register("stat", verb{usage: "stat PATH", summary: "print a path's type, size and times (FSTAT)",
		help: `Prints "key: value" lines: type (file, directory or other), size in bytes,
modified and accessed (UTC), and the same times as Unix seconds.`,
		examples: `tf stat docs/report.pdf
tf stat docs/report.pdf | awk '/^size:/ {print $2}'`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usageError("stat needs PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				fi, err := c.Stat(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "type: %s\nsize: %d\nmodified: %s\naccessed: %s\nmtime: %d\natime: %d\n",
					typeName(fi.Type), fi.Size, fi.Mtime.UTC().Format(timeLayout), fi.Atime.UTC().Format(timeLayout),
					fi.Mtime.Unix(), fi.Atime.Unix())
				return nil
			})
		}})
	register("mkdir", verb{usage: "mkdir [-p] DIR...", summary: "create directories (MKDIR; -p also the missing parents, no error if they exist)",
		examples: `tf mkdir docs
tf mkdir -p photos/2026/11`,
		run: func(ctx context.Context, e *env, args []string) error {
			var parents bool
			fs, err := parseFlags(e, "mkdir", args, func(fs *flag.FlagSet) {
				fs.BoolVar(&parents, "p", false, "make parent directories as needed; existing ones are fine")
			})
			if err != nil {
				return err
			}
			if fs.NArg() == 0 {
				return usageError("mkdir needs at least one DIR")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				for _, d := range fs.Args() {
					if !parents {
						if err := c.Mkdir(ctx, d); err != nil {
							return err
						}
						continue
					}
					if err := mkdirAll(ctx, c, d); err != nil {
						return err
					}
				}
				return nil
			})
		}})
	register("rm", verb{usage: "rm [-r] PATH...", summary: "delete files (DEL; -r also directories with everything in them, RMDIR)",
		examples: `tf rm old.txt
tf rm -r build`,
		run: func(ctx context.Context, e *env, args []string) error {
			var rec bool
			fs, err := parseFlags(e, "rm", args, func(fs *flag.FlagSet) {
				fs.BoolVar(&rec, "r", false, "remove directories and their contents")
			})
			if err != nil {
				return err
			}
			if fs.NArg() == 0 {
				return usageError("rm needs at least one PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				for _, p := range fs.Args() {
					if strings.Trim(p, "/. ") == "" {
						return usageError(fmt.Sprintf("rm: refusing to remove the data root (%q)", p))
					}
					if rec {
						fi, err := c.Stat(ctx, p)
						if err != nil {
							return err
						}
						if fi.Type == 'D' {
							if err := c.Rmdir(ctx, p); err != nil {
								return err
							}
							continue
						}
					}
					if err := c.Delete(ctx, p); err != nil {
						var fe *tfproto.Error
						if errors.As(err, &fe) && fe.Code == tfproto.CodeIsDirectory {
							return fmt.Errorf("rm %s: %w (use rm -r for a directory)", p, err)
						}
						return err
					}
				}
				return nil
			})
		}})
	register("touch", verb{usage: "touch PATH...", summary: "create empty files (TOUCH); an existing file is an error (FAILED 12)",
		examples: `tf touch inbox/.ready`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usageError("touch needs at least one PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				for _, p := range args {
					if err := c.Touch(ctx, p); err != nil {
						return err
					}
				}
				return nil
			})
		}})
	register("mv", verb{usage: "mv OLD NEW", summary: "rename or move a file or directory (RENAM); NEW may be an existing directory, as with mv(1)",
		examples: `tf mv draft.txt final.txt
tf mv inbox/report.pdf archive/report.pdf
tf mv report.pdf archive/        # into a directory, keeping the name`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 2 {
				return usageError("mv needs OLD and NEW")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				dst, err := moveTarget(ctx, c, args[0], args[1])
				if err != nil {
					return err
				}
				return c.Rename(ctx, args[0], dst)
			})
		}})
	register("cp", verb{usage: "cp [-r] SRC DST", summary: "copy a file (COPY; -r a directory tree, CPDIR) on the server; DST must not exist",
		examples: `tf cp report.pdf report-backup.pdf
tf cp -r photos photos-2026`,
		run: func(ctx context.Context, e *env, args []string) error {
			var rec bool
			fs, err := parseFlags(e, "cp", args, func(fs *flag.FlagSet) {
				fs.BoolVar(&rec, "r", false, "copy a directory tree")
			})
			if err != nil {
				return err
			}
			if fs.NArg() != 2 {
				return usageError("cp needs SRC and DST")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				if rec {
					return c.CopyDir(ctx, fs.Arg(0), fs.Arg(1))
				}
				return c.Copy(ctx, fs.Arg(0), fs.Arg(1))
			})
		}})
	register("rcvfile", verb{usage: "rcvfile [-d] REMOTE [LOCAL]", summary: "download a file with RCVFILE to LOCAL or stdout; -d: the server deletes it after sending",
		examples: `tf rcvfile notes.txt notes.txt
tf rcvfile -d outbox/job1 job1      # take a file off a queue`,
		run: rcvfileVerb})
	register("cat", verb{usage: "cat PATH...", summary: "print remote files to stdout (RCVFILE)",
		examples: `tf cat notes.txt
tf cat logs/app.log | grep ERROR`,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usageError("cat needs at least one PATH")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				for _, p := range args {
					if _, err := c.ReceiveFile(ctx, p, e.stdout, false); err != nil {
						return err
					}
				}
				return nil
			})
		}})
}

// rcvfileVerb is tf rcvfile: RCVFILE to a local file or stdout; -d asks the
// server to delete the file after a complete transfer.
func rcvfileVerb(ctx context.Context, e *env, args []string) error {
	var del bool
	fs, err := parseFlags(e, "rcvfile", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&del, "d", false, "the server deletes the file after sending it (RCVFILE 1)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError("rcvfile needs REMOTE and an optional LOCAL")
	}
	remote, local := fs.Arg(0), fs.Arg(1)
	return withClient(ctx, e, func(c *client.Client) error {
		if local == "" || local == "-" {
			_, err := c.ReceiveFile(ctx, remote, e.stdout, del)
			return err
		}
		// Created at the first byte, so a refused RCVFILE leaves no file.
		w := &lazyFile{name: local}
		_, err := c.ReceiveFile(ctx, remote, w, del)
		if err == nil && w.f == nil {
			err = w.open() // an empty file
		}
		if cerr := w.close(); err == nil {
			err = cerr
		}
		return err
	})
}

// lazyFile creates (truncates) its file at the first write.
type lazyFile struct {
	name string
	f    *os.File
}

func (l *lazyFile) open() error {
	f, err := os.Create(l.name)
	l.f = f
	return err
}

func (l *lazyFile) Write(b []byte) (int, error) {
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	return l.f.Write(b)
}

func (l *lazyFile) close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// mkdirAll makes dir and its missing parents; existing directories are fine.
func mkdirAll(ctx context.Context, c *client.Client, dir string) error {
	clean := strings.Trim(path.Clean("/"+dir), "/")
	if clean == "" {
		return nil
	}
	parts := strings.Split(clean, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		err := c.Mkdir(ctx, p)
		var fe *tfproto.Error
		if errors.As(err, &fe) && fe.Code == tfproto.CodeDirExists {
			fi, serr := c.Stat(ctx, p)
			if serr == nil && fi.Type == 'D' {
				continue
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// moveTarget is mv(1)'s rule: a NEW that ends in "/" or names an existing
// directory receives OLD under its own base name. RENAM itself is rename(2),
// which refuses a directory as the new name.
func moveTarget(ctx context.Context, c *client.Client, old, dst string) (string, error) {
	base := path.Base(strings.TrimRight(old, "/"))
	if strings.HasSuffix(dst, "/") {
		return dst + base, nil
	}
	fi, err := c.Stat(ctx, dst)
	var fe *tfproto.Error
	switch {
	case err == nil && fi.Type == 'D':
		return dst + "/" + base, nil
	case err == nil || errors.As(err, &fe):
		return dst, nil // RENAM answers for a file or a missing NEW
	}
	return "", err
}
