package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/proxy"
)

func init() {
	register("proxy", subcommand{summary: "transparent proxy: relay TCP and UDP to another TFProtocol server", run: proxyCmd})
}

type proxyFlags struct {
	configFile, listen, to, logLevel, logFormat string
	dialTimeout, udpIdle, shutdown              time.Duration
	maxUDP                                      int
	noUDP, noOOB                                bool
}

func (f *proxyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.configFile, "config", "", "reference-format config file: the upstream from trp_ipv4, trp_ipv6 or trp_dns on the config's port, and the listen port")
	fs.StringVar(&f.listen, "listen", "", "TCP and UDP listen address (default :port from the config, else "+config.DefaultListen+")")
	fs.StringVar(&f.to, "to", "", "the real server, HOST:PORT (wins over the config's trp_* keys)")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", proxy.DefaultDialTimeout, "how long to try connecting to the upstream")
	fs.DurationVar(&f.udpIdle, "udp-idle-timeout", proxy.DefaultUDPIdleTimeout, "end a UDP session idle this long")
	fs.IntVar(&f.maxUDP, "max-udp-sessions", proxy.DefaultMaxUDPSessions, "most UDP client addresses relayed at once (least recently used makes room)")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", proxy.DefaultShutdownTimeout, "on SIGINT/SIGTERM, how long open sessions may go on")
	fs.BoolVar(&f.noUDP, "no-udp", false, "relay TCP only")
	fs.BoolVar(&f.noOOB, "no-oob", false, "do not forward TCP urgent (out-of-band) bytes")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
}

func proxyCmd(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runProxy(ctx, args, func(tcp, udp, upstream string) {
		fmt.Printf("tfd %s transparent proxy\n", version)
		fmt.Printf("  listening:  %s (tcp)", tcp)
		if udp != "" {
			fmt.Printf(", %s (udp)", udp)
		}
		fmt.Printf("\n  upstream:   %s\nStop with Ctrl-C.\n", upstream)
	})
}

// runProxy parses args, listens, calls ready with the bound addresses and
// relays until ctx ends.
func runProxy(ctx context.Context, args []string, ready func(tcp, udp, upstream string)) error {
	var f proxyFlags
	fset := flag.NewFlagSet("tfd proxy", flag.ContinueOnError)
	f.register(fset)
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: tfd proxy --listen ADDR --to HOST:PORT [flags]\n       tfd proxy --config FILE [flags]\n\n"+
			"Relays every TCP session and UDP datagram to the real server without\n"+
			"deciphering anything; both servers must share the key pair.\n\nflags:")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	if err := applyEnv(fset); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	cfg := config.Default()
	if f.configFile != "" {
		if cfg, err = config.LoadFile(f.configFile); err != nil {
			return err
		}
	}
	upstream, err := proxyUpstream(f.to, cfg)
	if err != nil {
		return err
	}
	listen := f.listen
	if listen == "" {
		listen = cfg.ListenAddr()
	}
	p, err := proxy.New(proxy.Config{
		Upstream:        upstream,
		DialTimeout:     f.dialTimeout,
		UDPIdleTimeout:  f.udpIdle,
		MaxUDPSessions:  f.maxUDP,
		ShutdownTimeout: f.shutdown,
		NoOOB:           f.noOOB,
		Log:             log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var pc net.PacketConn
	udpAddr := ""
	if !f.noUDP {
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err != nil {
			ln.Close()
			return fmt.Errorf("listen udp: %w", err)
		}
		udpAddr = pc.LocalAddr().String()
	}
	if ready != nil {
		ready(ln.Addr().String(), udpAddr, upstream)
	}
	return p.Serve(ctx, ln, pc)
}

// proxyUpstream returns the real server's address: --to, else the config's
// one trp_* key on the config's port (the reference proxy connects to the
// same port it listens on). trp_ipv4 and trp_ipv6 must be addresses of their
// family; trp_dns is a name resolved on every connection. Setting more than
// one trp_* key is an error: the reference keeps whichever came last in the
// file, which a reader of the file cannot tell at a glance.
func proxyUpstream(to string, cfg *config.Config) (string, error) {
	port := ""
	if cfg.Port != 0 {
		port = strconv.Itoa(cfg.Port)
	}
	if to != "" {
		host, p, err := net.SplitHostPort(to)
		if err != nil {
			if port == "" {
				return "", fmt.Errorf("--to %q: want HOST:PORT", to)
			}
			host, p = to, port
		}
		if err := checkHostPort(host, p); err != nil {
			return "", fmt.Errorf("--to %q: %w", to, err)
		}
		return net.JoinHostPort(host, p), nil
	}
	type key struct{ name, val string }
	var set []key
	for _, k := range []key{{"trp_ipv4", cfg.TRPIPv4}, {"trp_ipv6", cfg.TRPIPv6}, {"trp_dns", cfg.TRPDNS}} {
		if k.val != "" {
			set = append(set, k)
		}
	}
	switch {
	case len(set) == 0:
		return "", errors.New("no upstream: give --to HOST:PORT, or a config with trp_ipv4, trp_ipv6 or trp_dns")
	case len(set) > 1:
		return "", fmt.Errorf("config sets both %s and %s: keep one", set[0].name, set[1].name)
	case port == "":
		return "", fmt.Errorf("config sets %s but no port", set[0].name)
	}
	k := set[0]
	switch k.name {
	case "trp_ipv4", "trp_ipv6":
		a, err := netip.ParseAddr(k.val)
		if err != nil || (k.name == "trp_ipv4") != a.Is4() {
			return "", fmt.Errorf("%s %q is not an %s address", k.name, k.val, map[bool]string{true: "IPv4", false: "IPv6"}[k.name == "trp_ipv4"])
		}
	}
	if err := checkHostPort(k.val, port); err != nil {
		return "", fmt.Errorf("%s: %w", k.name, err)
	}
	return net.JoinHostPort(k.val, port), nil
}

// checkHostPort accepts an IP address or a DNS name, and a port 1–65535.
func checkHostPort(host, port string) error {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1–65535", port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host %q is not an IP address or a DNS name", host)
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("host %q is not an IP address or a DNS name", host)
		}
	}
	return nil
}
