package client

import "context"

// TLB asks the server's Transfer Load Balancer for a server to use and returns
// its tuple as the server's pool holds it, normally "4 ip;port" or "6 ip;port".
// An empty pool is a *tfproto.Error with code 52 (tfproto.CodeTLB).
func (c *Client) TLB(ctx context.Context) (string, error) { return c.command(ctx, "TLB") }
