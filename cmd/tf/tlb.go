package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tfd-project/tfd/client"
)

func init() {
	register("tlb", verb{usage: "tlb [-n N]", summary: "ask the load balancer for a server (TLB); -n asks N times on one connection",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := flag.NewFlagSet("tlb", flag.ContinueOnError)
			fs.SetOutput(e.stderr)
			n := fs.Int("n", 1, "tuples to ask for on the same connection (the pool rotates per connection)")
			if err := fs.Parse(args); err != nil {
				return usageError(err.Error())
			}
			if fs.NArg() != 0 || *n < 1 {
				return usageError("usage: tf tlb [-n N] (N ≥ 1)")
			}
			return withClient(ctx, e, func(c *client.Client) error {
				for range *n {
					tuple, err := c.TLB(ctx)
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, tuple)
				}
				return nil
			})
		}})
}
