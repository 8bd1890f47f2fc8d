package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Echo sends ECHO and returns the text the server echoes.
func (c *Client) Echo(ctx context.Context, text string) (string, error) {
	st, err := c.Do(ctx, "ECHO "+text)
	if err != nil {
		return "", err
	}
	return string(st.Raw), nil
}

// Date returns the server's time in whole seconds (DATE).
func (c *Client) Date(ctx context.Context) (time.Time, error) {
	s, err := c.command(ctx, "DATE")
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("client: DATE reply %q: %w", s, err)
	}
	return time.Unix(sec, 0), nil
}

// UDate returns the server's time with microseconds (UDATE).
func (c *Client) UDate(ctx context.Context) (time.Time, error) {
	return c.fracDate(ctx, "UDATE", time.Microsecond)
}

// NDate returns the server's time with nanoseconds (NDATE).
func (c *Client) NDate(ctx context.Context) (time.Time, error) {
	return c.fracDate(ctx, "NDATE", time.Nanosecond)
}

// fracDate parses "sec.frac" where frac is an unpadded integer count of units
// (WIRE.md §5.8), not a decimal fraction.
func (c *Client) fracDate(ctx context.Context, cmd string, unit time.Duration) (time.Time, error) {
	s, err := c.command(ctx, cmd)
	if err != nil {
		return time.Time{}, err
	}
	secS, fracS, ok := strings.Cut(s, ".")
	sec, err1 := strconv.ParseInt(secS, 10, 64)
	frac, err2 := strconv.ParseInt(fracS, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("client: %s reply %q is not sec.frac", cmd, s)
	}
	return time.Unix(sec, frac*int64(unit)), nil
}

// DateF returns the server's UTC date as "YYYY-MM-DD HH:MM:SS" (DATEF).
func (c *Client) DateF(ctx context.Context) (string, error) { return c.command(ctx, "DATEF") }

// DTOF converts Unix seconds to "YYYY-MM-DD HH:MM:SS" UTC on the server.
func (c *Client) DTOF(ctx context.Context, sec int64) (string, error) {
	return c.command(ctx, "DTOF "+strconv.FormatInt(sec, 10))
}

// FTOD converts "YYYY-MM-DD HH:MM:SS" (UTC) to Unix seconds on the server.
func (c *Client) FTOD(ctx context.Context, date string) (int64, error) {
	s, err := c.command(ctx, "FTOD "+date)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("client: FTOD reply %q: %w", s, err)
	}
	return v, nil
}

// ProcKey returns the session's unique key (PROCKEY), leading "/" included.
func (c *Client) ProcKey(ctx context.Context) (string, error) { return c.command(ctx, "PROCKEY") }

// FreeSpace returns the bytes available on the server's data partition (FREESP).
func (c *Client) FreeSpace(ctx context.Context) (uint64, error) {
	s, err := c.command(ctx, "FREESP")
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("client: FREESP reply %q: %w", s, err)
	}
	return v, nil
}
