package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a transfer's progress meter: Add counts bytes moved (it may be
// called from the transfer's goroutine only), Done ends the meter. The bar is
// github.com/schollz/progressbar/v3: tf moves one file per invocation, so a
// single scp-like line (bytes, rate, ETA) is all it needs, and that library
// gives it with a small dependency tree; vbauerster/mpb is built for several
// concurrent bars, which tf does not draw.
type progress interface {
	// Add counts n more bytes.
	Add(n int64)
	// Done ends the meter; ok says whether the transfer completed.
	Done(ok bool)
}

// newBar returns a progress bar on stderr, or a silent meter when quiet (-q or
// stderr not a terminal).
func newBar(e *env, desc string, total int64) progress {
	if e.quiet {
		return nopProgress{}
	}
	if total <= 0 {
		total = -1 // unknown size: a spinner
	}
	w := e.stderr
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseIECUnits(true),
	)
	return &barProgress{bar: bar, w: w}
}

type barProgress struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func (b *barProgress) Add(n int64) { b.bar.Add64(n) }

func (b *barProgress) Done(ok bool) {
	if ok {
		b.bar.Finish()
	} else {
		b.bar.Exit()
	}
	fmt.Fprintln(b.w)
}

type nopProgress struct{}

func (nopProgress) Add(int64) {}
func (nopProgress) Done(bool) {}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
