// Package config reads the reference TFProtocol daemon's configuration file format
// so an existing deployment's file works unchanged, and holds tfd's own settings
// (limits, timeouts, listeners) that flags and TFD_* environment variables set.
//
// The file format: one "key value" per line, "#" starts a comment line, flags are
// a key alone on its line, and the key blocks privkey and pubkey hold PEM text
// between "{" and "}" across lines. Unlike the reference, keys and flags are
// matched as whole words at the start of a line, never as substrings
// (WIRE.md §9 item 14).
package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a complete server configuration.
type Config struct {
	// Reference keys.
	Proto      string // protocol version string clients must send
	Hash       string // hash identity clients must send
	DBDir      string // the data directory (the session root)
	Port       int    // the reference's port; Listen wins when set
	PrivKeyPEM []byte // RSA-2048 private key
	PubKeyPEM  []byte // public key (used by the transparent proxy and printed)
	UserDB     string // user database file (multi-user mode)
	DefUser    string // single-user mode system user ("" = multi-user when UserDB is set)
	TLB        string // TLB pool file
	InJail     bool   // INJAIL mandatory after login
	TRPIPv4    string // transparent proxy target (IPv4)
	TRPIPv6    string // transparent proxy target (IPv6)
	TRPDNS     string // transparent proxy target (DNS name)

	// tfd settings.
	Listen           string        // TCP (and UDP) listen address, host:port
	HandshakeTimeout time.Duration // deadline for the whole handshake
	IdleTimeout      time.Duration // 0 = no idle deadline between commands
	ShutdownTimeout  time.Duration // how long sessions may finish on shutdown
	MaxSessions      int           // 0 = unlimited
	MaxSessionsPerIP int           // 0 = unlimited
	HPFIMaxBuffer    int64         // cap of the negotiated PUT/GET buffer
	LoginFailDelay   time.Duration // a failed LOGIN (or INJAIL token) answers only after this

	// Warnings lists what the parser skipped or did not understand, one
	// sentence each, naming the key.
	Warnings []string
}

// Default returns the settings tfd uses when nothing overrides them.
func Default() *Config {
	return &Config{
		Proto:            "0.0",
		Hash:             "testhash",
		HandshakeTimeout: 15 * time.Second,
		ShutdownTimeout:  10 * time.Second,
		HPFIMaxBuffer:    8 << 20,
		LoginFailDelay:   time.Second,
	}
}

// Keys that the reference knows and tfd does not implement (2.5.x features).
var unsupported = map[string]bool{
	"faipath": true, "faitok_mq": true, "xsntmex": true, "xsace": true, "rpcproxy": true,
	"locksys": true, "runbash": true, "flycontext": true, "securefs": true,
}

// LoadFile reads a reference-format file over the defaults.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c := Default()
	if err := c.Parse(f); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a reference-format config from r into c. Keys present in the file
// replace the current values.
func (c *Config) Parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, val, _ := strings.Cut(trimmed, " ")
		val = strings.TrimSpace(val)
		if key == "privkey" || key == "pubkey" {
			pem, n, err := readBlock(val, sc)
			line += n
			if err != nil {
				return fmt.Errorf("line %d: %s: %w", line, key, err)
			}
			if key == "privkey" {
				c.PrivKeyPEM = pem
			} else {
				c.PubKeyPEM = pem
			}
			continue
		}
		if err := c.set(key, val); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return nil
}

// readBlock collects a "{ … }" block that starts on the current line (first) and
// may continue over the next lines. It returns the text between the braces with
// one "\n" per line break, and how many extra lines it consumed.
func readBlock(first string, sc *bufio.Scanner) ([]byte, int, error) {
	if !strings.HasPrefix(first, "{") {
		return nil, 0, fmt.Errorf("block must start with '{'")
	}
	var buf bytes.Buffer
	rest := first[1:]
	n := 0
	for {
		if i := strings.IndexByte(rest, '}'); i >= 0 {
			buf.WriteString(rest[:i])
			buf.WriteByte('\n')
			return bytes.TrimLeft(buf.Bytes(), "\n"), n, nil
		}
		buf.WriteString(rest)
		buf.WriteByte('\n')
		if !sc.Scan() {
			return nil, n, fmt.Errorf("unterminated block: no '}'")
		}
		n++
		rest = strings.TrimRight(sc.Text(), "\r")
	}
}

func (c *Config) set(key, val string) error {
	needVal := func() error {
		if val == "" {
			return fmt.Errorf("%s needs a value", key)
		}
		return nil
	}
	switch key {
	case "proto":
		if err := needVal(); err != nil {
			return err
		}
		if len(val) > 31 {
			return fmt.Errorf("proto longer than 31 bytes")
		}
		c.Proto = val
	case "hash":
		if err := needVal(); err != nil {
			return err
		}
		if len(val) > 255 {
			return fmt.Errorf("hash longer than 255 bytes")
		}
		c.Hash = val
	case "dbdir":
		if err := needVal(); err != nil {
			return err
		}
		c.DBDir = val
	case "port":
		p, err := strconv.Atoi(val)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("port %q is not a port number", val)
		}
		c.Port = p
	case "userdb":
		c.UserDB = val
	case "defusr":
		c.DefUser = val
	case "tlb":
		c.TLB = val
	case "injail":
		if val != "" {
			c.warn("injail takes no value; %q ignored", val)
		}
		c.InJail = true
	case "trp_ipv4":
		c.TRPIPv4 = val
	case "trp_ipv6":
		c.TRPIPv6 = val
	case "trp_dns":
		c.TRPDNS = val
	case "nprocmax":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("nprocmax %q is not a count", val)
		}
		c.MaxSessions = n
	default:
		if unsupported[key] {
			c.warn("config key %q is a TFProtocol 2.5 feature tfd does not implement; ignored", key)
		} else {
			c.warn("unknown config key %q ignored", key)
		}
	}
	return nil
}

func (c *Config) warn(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}

// DefaultListen is the embedded default's address.
const DefaultListen = "127.0.0.1:10345"

// ListenAddr returns the address to listen on: Listen when set, else all
// interfaces on the reference's port key, else DefaultListen.
func (c *Config) ListenAddr() string {
	switch {
	case c.Listen != "":
		return c.Listen
	case c.Port != 0:
		return ":" + strconv.Itoa(c.Port)
	}
	return DefaultListen
}

// MultiUser reports whether sessions must LOGIN: a user database is configured
// and no single-user account (defusr) is. Without either, tfd serves every
// session as the daemon's own user.
func (c *Config) MultiUser() bool { return c.DefUser == "" && c.UserDB != "" }
