package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/metrics"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/tfproto"
)

func init() {
	register("serve", subcommand{summary: "serve TFProtocol (the default)", run: serve})
	register("keygen", subcommand{summary: "write a new RSA-2048 key pair (private.pem, public.pem) into a directory", run: keygen})
}

// serveFlags are the settings of tfd serve. Every flag can also come from the
// environment as TFD_<NAME> (upper case, '-' as '_'); a flag on the command line
// wins over the environment, which wins over the config file.
type serveFlags struct {
	data, configFile, listen, proto, hash, dbdir, logLevel, logFormat string
	metricsListen                                                     string
	idle, handshake, shutdown                                         time.Duration
	loginFailDelay                                                    time.Duration
	maxSessions, maxPerIP                                             int
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", "./tfdata", "embedded-default data directory (keys/ and root/); unused with --config")
	fs.StringVar(&f.configFile, "config", "", "reference-format config file (proto, hash, dbdir, port, privkey {…}, …)")
	fs.StringVar(&f.listen, "listen", "", "TCP/UDP listen address (default 127.0.0.1:10345, or :port from the config)")
	fs.StringVar(&f.proto, "proto", "", "protocol version string clients must send (default 0.0)")
	fs.StringVar(&f.hash, "hash", "", "hash identity clients must send (default testhash)")
	fs.StringVar(&f.dbdir, "dbdir", "", "data root served to clients (overrides the config and --data)")
	fs.DurationVar(&f.idle, "idle-timeout", 0, "close sessions idle this long between commands (0 = never)")
	fs.DurationVar(&f.handshake, "handshake-timeout", 15*time.Second, "deadline for a client's whole handshake")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long sessions may finish")
	fs.IntVar(&f.maxSessions, "max-sessions", 0, "most concurrent sessions (0 = unlimited)")
	fs.IntVar(&f.maxPerIP, "max-sessions-per-ip", 0, "most concurrent sessions from one IP address (0 = unlimited)")
	fs.DurationVar(&f.loginFailDelay, "login-fail-delay", time.Second, "a failed LOGIN or INJAIL token is answered only after this (slows password guessing)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (off when empty)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
}

// applyEnv sets every flag not given on the command line from TFD_<NAME>.
func applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "TFD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// loadConfig builds the configuration from the config file or the embedded
// default, then applies the flags. It returns the public key's path for the
// start-up banner ("" when the key came from a config file).
func loadConfig(f *serveFlags, fset *flag.FlagSet) (*config.Config, string, error) {
	var cfg *config.Config
	pubPath := ""
	if f.configFile != "" {
		c, err := config.LoadFile(f.configFile)
		if err != nil {
			return nil, "", err
		}
		if len(c.PrivKeyPEM) == 0 {
			return nil, "", fmt.Errorf("config %s has no privkey {…} block", f.configFile)
		}
		cfg = c
	} else {
		cfg = config.Default()
		priv, pub, err := ensureKeys(filepath.Join(f.data, "keys"))
		if err != nil {
			return nil, "", err
		}
		cfg.PrivKeyPEM = priv
		pubPath = filepath.Join(f.data, "keys", "public.pem")
		cfg.PubKeyPEM = pub
		cfg.DBDir = filepath.Join(f.data, "root")
		if err := os.MkdirAll(cfg.DBDir, 0o755); err != nil {
			return nil, "", fmt.Errorf("create data root: %w", err)
		}
	}
	given := map[string]bool{}
	fset.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.proto != "" {
		cfg.Proto = f.proto
	}
	if f.hash != "" {
		cfg.Hash = f.hash
	}
	if f.dbdir != "" {
		cfg.DBDir = f.dbdir
	}
	cfg.HandshakeTimeout = f.handshake
	cfg.ShutdownTimeout = f.shutdown
	if given["idle-timeout"] || cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = f.idle
	}
	if given["max-sessions"] || cfg.MaxSessions == 0 {
		cfg.MaxSessions = f.maxSessions
	}
	cfg.MaxSessionsPerIP = f.maxPerIP
	cfg.LoginFailDelay = f.loginFailDelay
	return cfg, pubPath, nil
}

// ensureKeys loads private.pem and public.pem from dir, creating the directory
// and a new RSA-2048 pair on first start.
func ensureKeys(dir string) (priv, pub []byte, err error) {
	privPath, pubPath := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	priv, err = os.ReadFile(privPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeKeyPair(dir); err != nil {
			return nil, nil, err
		}
		priv, err = os.ReadFile(privPath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read private key: %w", err)
	}
	pub, err = os.ReadFile(pubPath)
	if errors.Is(err, fs.ErrNotExist) {
		k, perr := tfproto.ParsePrivateKeyPEM(priv)
		if perr != nil {
			return nil, nil, perr
		}
		if pub, err = tfproto.MarshalPublicKeyPEM(&k.PublicKey); err == nil {
			err = os.WriteFile(pubPath, pub, 0o644)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("public key: %w", err)
	}
	return priv, pub, nil
}

func writeKeyPair(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	k, err := tfproto.GenerateKey()
	if err != nil {
		return err
	}
	pub, err := tfproto.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "private.pem"), tfproto.MarshalPrivateKeyPEM(k), 0o600); err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "public.pem"), pub, 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

func keygen(args []string) error {
	fset := flag.NewFlagSet("tfd keygen", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: tfd keygen DIR\n\nWrites DIR/private.pem (PKCS#1, mode 0600) and DIR/public.pem (PKIX).")
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("keygen needs a directory")
	}
	dir := fset.Arg(0)
	if _, err := os.Stat(filepath.Join(dir, "private.pem")); err == nil {
		return fmt.Errorf("%s already exists; not overwriting", filepath.Join(dir, "private.pem"))
	}
	if err := writeKeyPair(dir); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem"))
	return nil
}

func serve(args []string) error {
	var f serveFlags
	var cf clusterFlags
	fset := flag.NewFlagSet("tfd serve", flag.ContinueOnError)
	f.register(fset)
	cf.register(fset)
	if err := fset.Parse(args); err != nil {
		return err
	}
	if err := applyEnv(fset); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	cfg, pubPath, err := loadConfig(&f, fset)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var opts []server.Option
	if f.metricsListen != "" {
		m := metrics.New()
		opts = append(opts, server.WithMetrics(m))
		go func() {
			err := m.Serve(ctx, f.metricsListen, func(a net.Addr) { log.Info("metrics", "url", "http://"+a.String()+"/metrics") })
			if err != nil {
				log.Error("metrics listener", "err", err)
			}
		}()
	}
	cl, err := startCluster(&cf, cfg, log) // cluster.go; nil when not clustered
	if err != nil {
		return err
	}
	defer cl.Close()
	srv, err := server.New(cfg, log, append(opts, cl.serverOptions()...)...)
	if err != nil {
		return err
	}
	ln, pc, err := listenBoth(cfg.ListenAddr())
	if err != nil {
		return err
	}
	printBanner(cfg, ln.Addr().String(), pubPath)
	if err := cl.attach(srv, ln.Addr().String()); err != nil {
		ln.Close()
		pc.Close()
		return err
	}
	if host, _, _ := net.SplitHostPort(cfg.ListenAddr()); cfg.Hash == "testhash" && !isLoopback(host) {
		log.Warn("listening beyond loopback with the default hash \"testhash\": set --hash or the config's hash")
	}
	stopHUP := reloadOnHUP(ctx, srv, log, func() (*config.Config, error) {
		c, _, err := loadConfig(&f, fset)
		return c, err
	}, nil)
	defer stopHUP()
	udpDone := make(chan error, 1)
	go func() { udpDone <- srv.ServeUDP(ctx, pc) }()
	err = srv.Serve(ctx, ln)
	stop()
	return errors.Join(err, <-udpDone)
}

// listenBoth listens on TCP addr and on UDP with the same host and the TCP
// listener's port number (the UDP services share it, WIRE.md §6; with port 0
// the UDP socket takes the port the kernel gave TCP).
func listenBoth(addr string) (net.Listener, net.PacketConn, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)))
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("listen udp: %w", err)
	}
	return ln, pc, nil
}

// reloadOnHUP reloads the configuration (the config file, with the command
// line and environment still on top) into srv at every SIGHUP until ctx ends
// or the returned stop is called. A config that fails to load or that srv
// refuses is logged and changes nothing. Each reload's result is also sent to
// results when it is not nil (tests).
func reloadOnHUP(ctx context.Context, srv *server.Server, log *slog.Logger, load func() (*config.Config, error), results chan<- error) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the configuration")
				cfg, err := load()
				if err == nil {
					err = srv.Reload(cfg)
				}
				if err != nil {
					log.Error("reload failed; the running configuration stays", "err", err)
				}
				if results != nil {
					results <- err
				}
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printBanner(cfg *config.Config, addr, pubPath string) {
	fmt.Printf("tfd %s serving TFProtocol 2.4.1\n", version)
	fmt.Printf("  address:    %s\n", addr)
	fmt.Printf("  proto:      %s\n", cfg.Proto)
	fmt.Printf("  hash:       %s\n", cfg.Hash)
	if pubPath != "" {
		fmt.Printf("  public key: %s\n", pubPath)
	}
	fmt.Printf("  data root:  %s\n", cfg.DBDir)
	fmt.Printf("Stop with Ctrl-C; reload the config with kill -HUP %d.\n", os.Getpid())
}
