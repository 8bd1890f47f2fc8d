package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tfd-project/tfd/internal/cluster"
	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/internal/server"
	"github.com/tfd-project/tfd/tfproto"
)

func init() {
	register("cluster", subcommand{summary: "cluster operations: tfd cluster status", run: clusterCmd})
}

// clusterFlags are tfd serve's cluster settings. Without --cluster-listen or
// --nats-url nothing of the cluster runs.
type clusterFlags struct {
	listen, peers, natsURL, nodeID, advertise, httpAddr, name, secret string
	heartbeat                                                         time.Duration
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "cluster-listen", "", "join a cluster: embedded NATS route listener HOST:PORT (e.g. 0.0.0.0:6222)")
	fs.StringVar(&c.peers, "cluster-peers", "", "comma-separated route URLs of other nodes, nats-route://HOST:PORT,… (any reachable one is enough)")
	fs.StringVar(&c.natsURL, "nats-url", "", "join a cluster through an existing NATS deployment instead of the embedded server")
	fs.StringVar(&c.nodeID, "node-id", "", "this node's id in the cluster (default random)")
	fs.StringVar(&c.advertise, "advertise", "", "client-facing IP:PORT that TLB hands out for this node (default the listen address)")
	fs.StringVar(&c.httpAddr, "cluster-http", "", "serve the node's cluster view as JSON on HOST:PORT"+cluster.StatusPath+" (for tfd cluster status)")
	fs.StringVar(&c.secret, "cluster-secret", "", "password every node's routes must present (same on all nodes; better set as TFD_CLUSTER_SECRET)")
	fs.StringVar(&c.name, "cluster-name", cluster.DefaultClusterName, "NATS cluster name; every node must use the same")
	fs.DurationVar(&c.heartbeat, "cluster-heartbeat", cluster.DefaultHeartbeat, "heartbeat interval; a node missing 3 expires")
}

func (c *clusterFlags) enabled() bool { return c.listen != "" || c.natsURL != "" }

// clusterRun is the running cluster membership of tfd serve; nil when not
// clustered (all its methods accept a nil receiver).
type clusterRun struct {
	flags *clusterFlags
	node  *cluster.Node
	http  *http.Server
	log   *slog.Logger
}

// startCluster joins the cluster before server.New, so that the server is
// built on the cluster's bus and TLB pool.
func startCluster(c *clusterFlags, cfg *config.Config, log *slog.Logger) (*clusterRun, error) {
	if !c.enabled() {
		if c.peers != "" || c.httpAddr != "" || c.advertise != "" || c.nodeID != "" || c.secret != "" {
			return nil, errors.New("--cluster-peers, --cluster-http, --cluster-secret, --advertise and --node-id need --cluster-listen or --nats-url")
		}
		return nil, nil
	}
	var peers []string
	for _, p := range strings.Split(c.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}
	opts := cluster.Options{
		NodeID:        c.nodeID,
		ClusterListen: c.listen,
		Peers:         peers,
		NATSURL:       c.natsURL,
		ClusterSecret: c.secret,
		ClusterName:   c.name,
		Heartbeat:     c.heartbeat,
		Profile:       profile(cfg),
		Log:           log,
	}
	if c.advertise != "" {
		opts.Advertise = c.advertise
	}
	node, err := cluster.Start(opts)
	if err != nil {
		return nil, err
	}
	return &clusterRun{flags: c, node: node, log: log}, nil
}

// profile fingerprints what clients need to match: the public key, proto
// and hash.
func profile(cfg *config.Config) string {
	pub := cfg.PubKeyPEM
	if k, err := tfproto.ParsePrivateKeyPEM(cfg.PrivKeyPEM); err == nil {
		if p, err := tfproto.MarshalPublicKeyPEM(&k.PublicKey); err == nil {
			pub = p
		}
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(cfg.Proto), []byte(cfg.Hash), pub} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// serverOptions plugs the cluster's bus and pool into the server.
func (r *clusterRun) serverOptions() []server.Option {
	if r == nil {
		return nil
	}
	return []server.Option{server.WithBus(r.node.Bus()), server.WithTLBPool(r.node.Directory())}
}

// attach runs once the server and its listener exist: heartbeats report the
// server's sessions, TLB hands out the advertised (or listen) address, and
// the status endpoint starts.
func (r *clusterRun) attach(srv *server.Server, listenAddr string) error {
	if r == nil {
		return nil
	}
	r.node.SetLoad(func() cluster.Load { return cluster.Load{Sessions: srv.ActiveSessions()} })
	r.node.Bus().CountRemoteDrops(srv.GatewayCounters())
	if m := srv.Metrics(); m != nil {
		m.MustRegister(r.node.Collector())
	}
	adv := r.flags.advertise
	if adv == "" {
		var err error
		if adv, err = defaultAdvertise(listenAddr); err != nil {
			return err
		}
	}
	if err := r.node.SetAdvertise(adv); err != nil {
		return fmt.Errorf("--advertise: %w", err)
	}
	fmt.Printf("  cluster:    node %s, advertised as %s", r.node.ID(), adv)
	if a := r.node.ClusterAddr(); a != "" {
		fmt.Printf(", routes on %s", a)
	}
	fmt.Println()
	if r.flags.httpAddr != "" {
		ln, err := net.Listen("tcp", r.flags.httpAddr)
		if err != nil {
			return fmt.Errorf("--cluster-http: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle(cluster.StatusPath, r.node.StatusHandler())
		r.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := r.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("cluster http", "err", err)
			}
		}()
		fmt.Printf("  status:     http://%s%s\n", ln.Addr(), cluster.StatusPath)
	}
	return nil
}

// defaultAdvertise is the listen address, or, when it is a wildcard, the
// same port on this host's first non-loopback address.
func defaultAdvertise(listenAddr string) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("advertise: %w", err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return listenAddr, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() && ipn.IP.To4() != nil {
				return net.JoinHostPort(ipn.IP.String(), port), nil
			}
		}
	}
	return "", fmt.Errorf("listening on %s: cannot tell which address clients reach; set --advertise IP:PORT", listenAddr)
}

// Close leaves the cluster (after the server has stopped).
func (r *clusterRun) Close() {
	if r == nil {
		return
	}
	if r.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r.http.Shutdown(ctx)
		cancel()
	}
	if err := r.node.Close(); err != nil {
		r.log.Warn("leaving the cluster", "err", err)
	}
}

func clusterCmd(args []string) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: tfd cluster status (--http HOST:PORT | --nats-url URL) [--json]")
		return errors.New("unknown or missing cluster command")
	}
	fset := flag.NewFlagSet("tfd cluster status", flag.ContinueOnError)
	httpAddr := fset.String("http", "", "a node's --cluster-http address")
	natsURL := fset.String("nats-url", "", "the cluster's NATS (nodes started with --nats-url)")
	asJSON := fset.Bool("json", false, "print the raw JSON")
	timeout := fset.Duration("timeout", 5*time.Second, "how long to wait for an answer")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: tfd cluster status (--http HOST:PORT | --nats-url URL) [--json]\n\nLists the live nodes as the queried node sees them.")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	if (*httpAddr == "") == (*natsURL == "") {
		fset.Usage()
		return errors.New("give exactly one of --http and --nats-url")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var st cluster.Status
	var err error
	if *httpAddr != "" {
		st, err = cluster.FetchStatus(ctx, *httpAddr)
	} else {
		var nc *nats.Conn
		nc, err = nats.Connect(*natsURL, nats.Timeout(*timeout))
		if err != nil {
			return fmt.Errorf("connect %s: %w", *natsURL, err)
		}
		defer nc.Close()
		st, err = cluster.RequestStatus(ctx, nc, "")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(st)
	return nil
}

func printStatus(st cluster.Status) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSESSIONS\tGATEWAY PEERS\tLOAD\tLAST HEARD")
	for _, n := range st.Nodes {
		id := n.Node
		if id == st.Self {
			id += " (*)"
		}
		addr := n.Addr
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s ago\n", id, addr, n.Sessions, n.GatewayPeers, n.Load,
			(time.Duration(n.AgeMS) * time.Millisecond).Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Printf("%d live node(s); (*) answered\n", len(st.Nodes))
}
