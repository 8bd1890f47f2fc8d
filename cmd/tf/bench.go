package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// benchmark is one mode of `tf bench NAME`, registered from init by the file
// that implements it (bench_*.go).
type benchmark struct {
	usage   string // "NAME [flags]"
	summary string
	run     func(ctx context.Context, e *env, args []string) ([]figure, error)
}

var benchmarks = map[string]benchmark{}

func registerBench(name string, b benchmark) {
	if _, dup := benchmarks[name]; dup {
		panic("tf: bench mode " + name + " registered twice")
	}
	benchmarks[name] = b
}

// figure is one measured value: printed as one line, or as JSON with --json.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func init() {
	register("bench", verb{usage: "bench MODE [flags] [--json]", summary: "measure a TFProtocol server (modes: tf bench help)",
		run: func(ctx context.Context, e *env, args []string) error {
			jsonOut := false
			var rest []string
			for _, a := range args {
				if a == "--json" || a == "-json" {
					jsonOut = true
				} else {
					rest = append(rest, a)
				}
			}
			if len(rest) == 0 || rest[0] == "help" {
				names := make([]string, 0, len(benchmarks))
				for n := range benchmarks {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					fmt.Fprintf(e.stdout, "  %-34s %s\n", benchmarks[n].usage, benchmarks[n].summary)
				}
				if len(rest) == 0 {
					return usageError("bench needs a mode")
				}
				return nil
			}
			b, ok := benchmarks[rest[0]]
			if !ok {
				return usageError(fmt.Sprintf("unknown bench mode %q (see tf bench help)", rest[0]))
			}
			figs, err := b.run(ctx, e, rest[1:])
			if err != nil {
				return err
			}
			return printFigures(e, rest[0], figs, jsonOut)
		}})
}

func printFigures(e *env, mode string, figs []figure, jsonOut bool) error {
	if jsonOut {
		return json.NewEncoder(e.stdout).Encode(struct {
			Mode    string   `json:"mode"`
			Figures []figure `json:"figures"`
		}{mode, figs})
	}
	for _, f := range figs {
		fmt.Fprintf(e.stdout, "%-24s %14.3f %s\n", f.Name, f.Value, f.Unit)
	}
	return nil
}
