package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/client"
	"github.com/tfd-project/tfd/internal/cluster"
	"github.com/tfd-project/tfd/internal/config"
)

// freePorts returns n distinct free loopback TCP ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	lns := make([]net.Listener, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// buildTFD builds cmd/tfd into a temporary directory.
func buildTFD(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	bin := filepath.Join(t.TempDir(), "tfd")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	data string
	addr string
	http string
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, bin, id, data, addr, clusterAddr, httpAddr string, peers []string, extra ...string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, data: data, addr: addr, http: httpAddr, done: make(chan struct{})}
	args := append([]string{"serve",
		"--data", data, "--listen", addr, "--node-id", id,
		"--cluster-listen", clusterAddr, "--cluster-peers", strings.Join(peers, ","),
		"--cluster-http", httpAddr, "--cluster-heartbeat", "250ms", "--log-level", "debug"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// The routes are guarded (and the environment form of a flag is used).
	p.cmd.Env = append(os.Environ(), "TFD_CLUSTER_SECRET=multi-process-test")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", id, p.out.String())
		}
	})
	return p
}

// waitStatus polls a node's status endpoint until ok accepts it.
func waitStatus(t *testing.T, p *proc, within time.Duration, what string, ok func(cluster.Status) bool) cluster.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	var last cluster.Status
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cluster.FetchStatus(ctx, p.http)
		cancel()
		if err == nil && ok(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not %s within %v: %+v %v", p.http, what, within, last, lastErr)
	return last
}

func hasNodes(ids ...string) func(cluster.Status) bool {
	return func(st cluster.Status) bool {
		if len(st.Nodes) != len(ids) {
			return false
		}
		for i, n := range st.Nodes {
			if n.Node != ids[i] {
				return false
			}
		}
		return true
	}
}

// TestClusterProcesses runs three tfd processes as a cluster on loopback,
// SIGKILLs one, checks that the others drop it within 5 s, then restarts it
// and checks that it rejoins.
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs tfd processes")
	}
	bin := buildTFD(t)
	dir := t.TempDir()
	ports := freePorts(t, 10)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[9])
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	// One key pair for the cluster, as the README says.
	if out, err := exec.Command(bin, "keygen", filepath.Join(dir, "node1", "keys")).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	for _, n := range []string{"node2", "node3"} {
		if err := os.CopyFS(filepath.Join(dir, n), os.DirFS(filepath.Join(dir, "node1"))); err != nil {
			t.Fatal(err)
		}
	}
	start := func(i int) *proc {
		var extra []string
		if i == 0 {
			extra = []string{"--metrics-listen", metricsAddr}
		}
		return startProc(t, bin, fmt.Sprint("node", i+1), filepath.Join(dir, fmt.Sprint("node", i+1)),
			fmt.Sprintf("127.0.0.1:%d", ports[i]), fmt.Sprintf("127.0.0.1:%d", ports[3+i]),
			fmt.Sprintf("127.0.0.1:%d", ports[6+i]), peers, extra...)
	}
	procs := []*proc{start(0), start(1), start(2)}
	all := hasNodes("node1", "node2", "node3")
	for _, p := range procs {
		waitStatus(t, p, 60*time.Second, "three nodes", all)
	}

	// node1's Prometheus metrics include the cluster's.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("tfd_cluster_nodes 3")) {
		t.Fatalf("metrics lack tfd_cluster_nodes 3:\n%s", body)
	}

	// A real session on node2 shows in node1's view of the cluster.
	pub, err := os.ReadFile(filepath.Join(procs[1].data, "keys", "public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, procs[1].addr, client.Options{PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitStatus(t, procs[0], 10*time.Second, "showing node2's session", func(st cluster.Status) bool {
		for _, n := range st.Nodes {
			if n.Node == "node2" {
				return n.Sessions == 1 && n.Load == 1 && n.Addr == procs[1].addr
			}
		}
		return false
	})

	// `tfd cluster status` prints the table.
	out, err := exec.Command(bin, "cluster", "status", "--http", procs[2].http).CombinedOutput()
	if err != nil {
		t.Fatalf("tfd cluster status: %v\n%s", err, out)
	}
	for _, want := range []string{"node1", "node2", "node3 (*)", procs[1].addr, "3 live node(s)"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Fatalf("tfd cluster status output lacks %q:\n%s", want, out)
		}
	}

	// Gateway peers: alice on node1, bob on node2, carol on node3.
	gw := func(p *proc, id string) *client.Gateway {
		t.Helper()
		c, err := client.Dial(ctx, p.addr, client.Options{PublicKeyPEM: pub})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		g, err := c.Gateway(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	expect := func(g *client.Gateway, want string) {
		t.Helper()
		got, err := g.Recv(ctx)
		if err != nil || string(got) != want {
			t.Fatalf("recv %q, %v; want %q", got, err, want)
		}
	}
	alice, bob, carol := gw(procs[0], "alice"), gw(procs[1], "bob"), gw(procs[2], "carol")
	exchange := func(tag string) {
		t.Helper()
		if err := alice.Send("bob", []byte(tag+" a>b")); err != nil {
			t.Fatal(err)
		}
		expect(bob, tag+" a>b")
		if err := bob.Send("alice", []byte(tag+" b>a")); err != nil {
			t.Fatal(err)
		}
		expect(alice, tag+" b>a")
	}
	exchange("before")
	if err := carol.Send("alice", []byte("from node3")); err != nil {
		t.Fatal(err)
	}
	expect(alice, "from node3")

	// SIGKILL node3: the others drop it within 5 s, TLB stops answering with
	// it, and the peers on node1 and node2 go on exchanging.
	if err := procs[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-procs[2].done
	for _, p := range procs[:2] {
		waitStatus(t, p, 5*time.Second-time.Since(killed), "without the killed node3", hasNodes("node1", "node2"))
	}
	tc, err := client.Dial(ctx, procs[0].addr, client.Options{PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for range 10 {
		tuple, err := tc.TLB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tuple == "4 "+strings.Replace(procs[2].addr, ":", ";", 1) {
			t.Fatalf("TLB answered the killed node: %s", tuple)
		}
	}
	exchange("after the kill")

	// Restarted, it rejoins.
	procs[2] = start(2)
	for _, p := range procs {
		waitStatus(t, p, 30*time.Second, "three nodes again", all)
	}
	exchange("after the restart")
	dave := gw(procs[2], "dave")
	if err := alice.Send("dave", []byte("welcome back")); err != nil {
		t.Fatal(err)
	}
	expect(dave, "welcome back")
	for _, p := range procs {
		if strings.Contains(p.out.String(), "another public key") {
			t.Fatalf("nodes sharing a key pair warned of a mismatch:\n%s", p.out.String())
		}
	}
}

func TestClusterFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"peers without listen", []string{"--cluster-peers", "nats-route://127.0.0.1:6222"}},
		{"http without listen", []string{"--cluster-http", "127.0.0.1:0"}},
		{"advertise without listen", []string{"--advertise", "127.0.0.1:1"}},
		{"node id without listen", []string{"--node-id", "x"}},
		{"bad peer", []string{"--cluster-listen", "127.0.0.1:0", "--cluster-peers", "127.0.0.1:6222"}},
		{"bad node id", []string{"--cluster-listen", "127.0.0.1:0", "--node-id", "a.b"}},
		{"bad advertise", []string{"--cluster-listen", "127.0.0.1:0", "--advertise", "0.0.0.0:10345"}},
		{"listen and url", []string{"--cluster-listen", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:4222"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cf clusterFlags
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cf.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cl, err := startCluster(&cf, config.Default(), nil)
			if err == nil {
				cl.Close()
				t.Fatal("no error")
			}
		})
	}
	// No cluster flags: nothing runs.
	var cf clusterFlags
	cl, err := startCluster(&cf, config.Default(), nil)
	if err != nil || cl != nil || cl.serverOptions() != nil || cl.attach(nil, "") != nil {
		t.Fatalf("without cluster flags: %v %v", cl, err)
	}
	cl.Close()
}

func TestDefaultAdvertise(t *testing.T) {
	if got, err := defaultAdvertise("127.0.0.1:10345"); err != nil || got != "127.0.0.1:10345" {
		t.Fatalf("concrete address: %q %v", got, err)
	}
	got, err := defaultAdvertise("0.0.0.0:10345")
	if err == nil {
		host, port, _ := net.SplitHostPort(got)
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() || port != "10345" {
			t.Fatalf("wildcard address advertised as %q", got)
		}
	}
	if _, err := defaultAdvertise("nonsense"); err == nil {
		t.Fatal("no error for a bad listen address")
	}
}
