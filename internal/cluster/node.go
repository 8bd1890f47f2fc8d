// Package cluster scales tfd out on NATS: an embedded nats-server with cluster
// routes (or an external NATS deployment), a NATS-backed gateway.Bus that
// delivers XS_GATEWAY messages to whichever node holds the destination
// identity, and a node directory fed by load heartbeats that the TLB pool
// answers from (the least-loaded live node, as in the BTP design input).
//
// Subjects, under a prefix (default "tfd"):
//
//	<p>.hb              heartbeats (JSON NodeInfo), every Options.Heartbeat
//	<p>.bye             a node leaving on purpose (JSON {"node":…})
//	<p>.claim           an identity registration (JSON claim)
//	<p>.release         an identity release (JSON claim)
//	<p>.n.<node>.m      gateway messages for <node>: uvarint(len id) id msg
//	<p>.n.<node>.sync   request: reply with <node>'s claims (JSON)
//	<p>.status          request: reply with the answering node's Status
//
// Identities never appear in subjects (only node ids, which are checked to be
// subject-safe), so any byte string of any length is a valid identity.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults.
const (
	DefaultHeartbeat   = time.Second
	DefaultMissed      = 3
	DefaultPrefix      = "tfd"
	DefaultClusterName = "tfd"
	// DefaultMaxPayload is the embedded server's max_payload: room for a
	// gateway message plus its destination identity.
	DefaultMaxPayload = 8 << 20
)

// Options configure a Node. Either ClusterListen (embedded NATS with cluster
// routes) or NATSURL (an existing NATS deployment) must be set.
type Options struct {
	// NodeID names this node in the cluster (letters, digits, '-' and '_').
	// Empty = random.
	NodeID string
	// ClusterListen is the embedded server's route listener, HOST:PORT
	// (port 0 = any free port).
	ClusterListen string
	// Peers are route URLs of other nodes, e.g. nats-route://10.0.0.2:6222.
	// Any one reachable peer is enough: NATS gossips the rest. Listing the
	// node itself is harmless.
	Peers []string
	// ClusterSecret, when set, is the password every route must present
	// (user "tfd"): nodes without it cannot join. All nodes need the same.
	ClusterSecret string
	// NATSURL, instead of ClusterListen, connects to an existing NATS.
	NATSURL string
	// Advertise is the client-facing TCP address "ip:port" published in
	// heartbeats and answered by TLB. It may be set later with SetAdvertise
	// (e.g. once the listener's port is known); until then TLB does not
	// answer with this node.
	Advertise string
	// ClusterName is the NATS cluster name (all nodes must agree).
	ClusterName string
	// Prefix is the subject prefix (several tfd clusters may share a NATS).
	Prefix string
	// Heartbeat is the heartbeat interval; a node missing Missed heartbeats
	// expires.
	Heartbeat time.Duration
	Missed    int
	// Profile fingerprints what a client must know to talk to this node
	// (public key, proto, hash). TLB sends clients to any node, so every
	// node should have the same; a node joining with another is logged.
	Profile string
	// Log receives the node's (and the embedded server's) messages.
	Log *slog.Logger
}

var nodeIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Load is what the server reports for heartbeats.
type Load struct {
	// Sessions is the number of open TFProtocol sessions.
	Sessions int
}

// routeUser is the route user name with Options.ClusterSecret.
const routeUser = "tfd"

// Node is one member of a tfd cluster.
type Node struct {
	opts Options
	id   string
	inc  int64 // incarnation: distinguishes restarts under the same id
	log  *slog.Logger
	ns   *natsserver.Server // nil with an external NATS
	nc   *nats.Conn

	bus *Bus
	dir *Directory

	subs   []*nats.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewID returns a random node id.
func NewID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "n" + hex.EncodeToString(b[:])
}

// Validate fills defaults and checks o.
func (o *Options) Validate() error {
	if o.NodeID == "" {
		o.NodeID = NewID()
	}
	if !nodeIDRe.MatchString(o.NodeID) {
		return fmt.Errorf("cluster: node id %q: use 1-64 letters, digits, '-' or '_'", o.NodeID)
	}
	if (o.ClusterListen == "") == (o.NATSURL == "") {
		return errors.New("cluster: set exactly one of the cluster listen address and the NATS URL")
	}
	if o.NATSURL != "" && o.ClusterSecret != "" {
		return errors.New("cluster: the cluster secret guards the embedded server's routes; give an external NATS's credentials in its URL")
	}
	if o.NATSURL != "" && len(o.Peers) > 0 {
		return errors.New("cluster: route peers need the embedded server (cluster listen), not a NATS URL")
	}
	for _, p := range o.Peers {
		u, err := url.Parse(p)
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			return fmt.Errorf("cluster: peer %q: want nats-route://HOST:PORT", p)
		}
	}
	if o.Advertise != "" {
		if _, err := tupleFor(o.Advertise); err != nil {
			return err
		}
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, " \t\r\n*>") || strings.HasPrefix(o.Prefix, ".") || strings.HasSuffix(o.Prefix, ".") {
		return fmt.Errorf("cluster: subject prefix %q is not subject-safe", o.Prefix)
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Heartbeat < 10*time.Millisecond {
		return fmt.Errorf("cluster: heartbeat interval %v: at least 10ms", o.Heartbeat)
	}
	if o.Missed <= 0 {
		o.Missed = DefaultMissed
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Start starts the embedded NATS server (or connects to the external one),
// subscribes the cluster subjects and begins heartbeating. It does not wait
// for other nodes: see WaitRoutes and WaitNodes.
func Start(opts Options) (*Node, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, id: opts.NodeID, inc: time.Now().UnixNano(), log: opts.Log.With("node", opts.NodeID)}
	if err := n.connect(); err != nil {
		n.shutdownNATS()
		return nil, err
	}
	n.bus = newBus(n)
	n.dir = newDirectory(n)
	if err := n.subscribe(); err != nil {
		n.shutdownNATS()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.dir.beat() // our own entry exists before the first tick
	n.wg.Add(1)
	go n.heartbeatLoop(ctx)
	n.log.Info("cluster node started", "advertise", opts.Advertise, "cluster_listen", n.ClusterAddr(), "nats_url", opts.NATSURL)
	return n, nil
}

func (n *Node) connect() error {
	copts := []nats.Option{
		nats.Name("tfd-" + n.id),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			n.log.Warn("nats", "subject", subj, "err", err)
		}),
	}
	if n.opts.NATSURL != "" {
		nc, err := nats.Connect(n.opts.NATSURL, copts...)
		if err != nil {
			return fmt.Errorf("cluster: connect %s: %w", n.opts.NATSURL, err)
		}
		n.nc = nc
		return nil
	}
	host, portStr, err := net.SplitHostPort(n.opts.ClusterListen)
	if err != nil {
		return fmt.Errorf("cluster: listen address %q: %w", n.opts.ClusterListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("cluster: listen port %q", portStr)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	// nats-server starts routing only after its client listener is up, so
	// DontListen is not an option with routes: the client port listens on a
	// random loopback port, closed to anyone without the random token. tfd
	// itself connects in-process.
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	sopts := &natsserver.Options{
		ServerName:    n.id,
		Host:          "127.0.0.1",
		Port:          natsserver.RANDOM_PORT,
		Authorization: token,
		NoSigs:        true,
		MaxPayload:    DefaultMaxPayload,
		Cluster: natsserver.ClusterOpts{
			Name: n.opts.ClusterName,
			Host: host,
			Port: port,
		},
	}
	if len(n.opts.Peers) > 0 {
		sopts.Routes = natsserver.RoutesFromStr(strings.Join(n.opts.Peers, ","))
	}
	if n.opts.ClusterSecret != "" {
		sopts.Cluster.Username, sopts.Cluster.Password = routeUser, n.opts.ClusterSecret
		for _, u := range sopts.Routes {
			if u.User == nil {
				u.User = url.UserPassword(routeUser, n.opts.ClusterSecret)
			}
		}
	}
	// Fail fast and clearly when the route port is taken (nats-server would
	// only time out below).
	if port != natsserver.RANDOM_PORT {
		l, err := net.Listen("tcp", n.opts.ClusterListen)
		if err != nil {
			return fmt.Errorf("cluster: listen %s: %w", n.opts.ClusterListen, err)
		}
		l.Close()
	}
	ns, err := natsserver.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("cluster: embedded nats: %w", err)
	}
	ns.SetLoggerV2(natsLogger{n.log.With("component", "nats")}, false, false, false)
	ns.Start()
	n.ns = ns
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("cluster: embedded nats did not start (is %s free?)", n.opts.ClusterListen)
	}
	nc, err := nats.Connect("", append(copts, nats.InProcessServer(ns), nats.Token(token))...)
	if err != nil {
		return fmt.Errorf("cluster: in-process nats connection: %w", err)
	}
	n.nc = nc
	return nil
}

func (n *Node) subject(parts ...string) string {
	return n.opts.Prefix + "." + strings.Join(parts, ".")
}

func (n *Node) subscribe() error {
	type sub struct {
		subj string
		h    nats.MsgHandler
	}
	for _, s := range []sub{
		{n.subject("hb"), n.dir.onHeartbeat},
		{n.subject("bye"), n.dir.onBye},
		{n.subject("claim"), n.bus.onClaim},
		{n.subject("release"), n.bus.onRelease},
		{n.subject("n", n.id, "m"), n.bus.onMessage},
		{n.subject("n", n.id, "sync"), n.bus.onSyncRequest},
		{n.subject("status"), n.onStatusRequest},
	} {
		ns, err := n.nc.Subscribe(s.subj, s.h)
		if err != nil {
			return fmt.Errorf("cluster: subscribe %s: %w", s.subj, err)
		}
		// Messages are bounded by max_payload; allow a deep backlog before
		// NATS starts dropping (best effort, like the gateway queues).
		if err := ns.SetPendingLimits(1<<20, 512<<20); err != nil {
			return fmt.Errorf("cluster: pending limits: %w", err)
		}
		n.subs = append(n.subs, ns)
	}
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: flush subscriptions: %w", err)
	}
	return nil
}

func (n *Node) heartbeatLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.dir.beat()
			n.dir.expire(time.Now())
		}
	}
}

// ID returns the node id.
func (n *Node) ID() string { return n.id }

// Bus returns the node's NATS-backed gateway bus.
func (n *Node) Bus() *Bus { return n.bus }

// Directory returns the node directory; it is also the TLB pool.
func (n *Node) Directory() *Directory { return n.dir }

// SetLoad sets the hook heartbeats read the server's load from (call it after
// server.New; until then the node reports no sessions).
func (n *Node) SetLoad(f func() Load) { n.dir.setLoad(f) }

// SetAdvertise sets the client-facing address "ip:port" published from the
// next heartbeat on.
func (n *Node) SetAdvertise(addr string) error {
	if _, err := tupleFor(addr); err != nil {
		return err
	}
	n.dir.mu.Lock()
	n.dir.advertise = addr
	n.dir.mu.Unlock()
	n.dir.beat()
	return nil
}

// ClusterAddr returns the embedded server's route listener address ("" with
// an external NATS).
func (n *Node) ClusterAddr() string {
	if n.ns == nil {
		return ""
	}
	if a := n.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// RouteURL returns nats-route://ADDR for other nodes to use as a peer.
func (n *Node) RouteURL() string { return "nats-route://" + n.ClusterAddr() }

// NumRoutes returns the embedded server's route count (0 with an external
// NATS).
func (n *Node) NumRoutes() int {
	if n.ns == nil {
		return 0
	}
	return n.ns.NumRoutes()
}

// WaitNodes blocks until the directory lists at least want live nodes
// (this one included), or ctx ends.
func (n *Node) WaitNodes(ctx context.Context, want int) error {
	return n.dir.waitFor(ctx, func(live int) bool { return live >= want })
}

// Close leaves the cluster: it tells the others (so TLB stops answering with
// this node at once), stops heartbeating, closes the bus and the NATS
// connection, and shuts the embedded server down. Safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.dir.sayBye()
		n.bus.Close()
		n.closeErr = n.shutdownNATS()
		n.bus.syncWG.Wait() // requests fail once the connection is closed
		n.log.Info("cluster node stopped")
	})
	return n.closeErr
}

// kill drops the node without saying goodbye (tests: a crash).
func (n *Node) kill() {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.bus.Close()
		n.shutdownNATS()
		n.bus.syncWG.Wait()
	})
}

func (n *Node) shutdownNATS() error {
	var err error
	if n.nc != nil {
		err = n.nc.FlushTimeout(time.Second)
		if errors.Is(err, nats.ErrConnectionClosed) {
			err = nil
		}
		n.nc.Close()
	}
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
	if err != nil {
		return fmt.Errorf("cluster: flush on close: %w", err)
	}
	return nil
}

// natsLogger sends the embedded server's log to slog. Notices are debug
// level: routine route churn is not news.
type natsLogger struct{ l *slog.Logger }

func (g natsLogger) Noticef(f string, v ...any) { g.l.Debug(fmt.Sprintf(f, v...)) }
func (g natsLogger) Warnf(f string, v ...any)   { g.l.Warn(fmt.Sprintf(f, v...)) }
func (g natsLogger) Fatalf(f string, v ...any)  { g.l.Error(fmt.Sprintf(f, v...)) }
func (g natsLogger) Errorf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if strings.Contains(msg, "connect to route") {
		// A peer that is down is retried every second; the directory
		// reports the node's departure and return once, at info level.
		g.l.Debug(msg)
		return
	}
	g.l.Warn(msg)
}
func (g natsLogger) Debugf(f string, v ...any) { g.l.Debug(fmt.Sprintf(f, v...)) }
func (g natsLogger) Tracef(f string, v ...any) { g.l.Debug(fmt.Sprintf(f, v...)) }
