package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
	"github.com/stretchr/testify/require"
)

// The harness: a backend starts memcached nodes on loopback ports, and each
// node can be killed, paused, restarted empty and (on Docker) cut off from
// the network. Docker is used where an engine is reachable; elsewhere local
// memcached processes stand in, and the faults only containers can produce
// skip. LIBMEMCACHED_IT_BACKEND=docker|local forces a backend.

const backendEnv = "LIBMEMCACHED_IT_BACKEND"

// node is one memcached server of a test cluster, reached on a loopback
// port whatever the backend.
type node interface {
	// Name is the node's name in logs (the container name on Docker).
	Name() string
	// Addr is "127.0.0.1:port", the address clients use.
	Addr() string
	// Kill stops the server at once (SIGKILL); its address refuses
	// connections until Restart.
	Kill() error
	// Pause freezes the server (docker pause, or SIGSTOP) without closing
	// anything: connections stay open and requests go unanswered.
	Pause() error
	// Unpause resumes a paused server.
	Unpause() error
	// Restart starts a fresh, empty server at the same address, killing
	// the old one if it still runs, and waits until it answers.
	Restart() error
	// Disconnect removes the container from its Docker network (docker
	// network disconnect); Reconnect puts it back. Docker only.
	Disconnect() error
	Reconnect() error
	// Partition drops every packet in and out of the container's network
	// namespace (an iptables rule inside that namespace only); Heal removes
	// the rule. Docker only: iptables runs inside the container, through the
	// Docker engine (the image carries the host's iptables).
	Partition() error
	Heal() error
}

// errUnsupported is returned by faults a backend cannot produce.
var errUnsupported = errors.New("not supported by this backend")

// nodeOptions configure a node at start.
type nodeOptions struct {
	args []string  // extra memcached arguments ("-I", "5m")
	sasl *saslUser // start with -S and a sasldb holding this user
}

type saslUser struct{ user, password string }

type backend interface {
	Name() string
	// Describe says how the backend was set up, for the log.
	Describe() string
	start(name string, o nodeOptions) (node, error)
	remove(n node) error
	close()
}

// The backend is set up by the first test that starts a node (a run that
// selects no integration test touches neither Docker nor memcached), and
// torn down by TestMain.
var (
	backendOnce sync.Once
	theBackend  backend
	backendErr  error
)

func getBackend(t testing.TB) backend {
	t.Helper()
	backendOnce.Do(func() {
		theBackend, backendErr = chooseBackend()
		if backendErr != nil {
			theBackend = nil
		} else {
			fmt.Fprintf(os.Stderr, "integration_test: backend=%s (%s)\n", theBackend.Name(), theBackend.Describe())
		}
	})
	if backendErr != nil {
		t.Fatalf("integration_test: %v", backendErr)
	}
	return theBackend
}

func backendName() string {
	if theBackend == nil {
		return "none"
	}
	return theBackend.Name()
}

func TestMain(m *testing.M) {
	if op := os.Getenv(childEnv); op != "" {
		os.Exit(childMain(op))
	}
	code := m.Run()
	if theBackend != nil {
		theBackend.close()
	}
	printFigures()
	os.Exit(code)
}

// chooseBackend honours LIBMEMCACHED_IT_BACKEND, else uses Docker when an
// engine answers and local processes otherwise. CI must run on Docker: with
// CI=true the fallback is an error.
func chooseBackend() (backend, error) {
	switch v := os.Getenv(backendEnv); v {
	case "docker":
		d, err := newDockerBackend()
		if err != nil {
			return nil, err
		}
		return d, nil
	case "local":
		return localOrError(newLocalBackend("forced by " + backendEnv + "=local"))
	case "", "auto":
		d, err := newDockerBackend()
		if err == nil {
			return d, nil
		}
		if os.Getenv("CI") == "true" {
			return nil, fmt.Errorf("CI runs the Docker backend, but it is not usable: %v (set %s=local to run without Docker)", err, backendEnv)
		}
		return localOrError(newLocalBackend("no usable Docker engine: " + err.Error()))
	default:
		return nil, fmt.Errorf("%s=%q: want docker, local or auto", backendEnv, v)
	}
}

// localOrError keeps a nil *localBackend out of the interface.
func localOrError(l *localBackend, err error) (backend, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ---------------------------------------------------------------------------
// Figures: every measured number is logged as `FIGURE name=value unit`, and
// TestMain prints them all again at the end (visible with -v).

var figures struct {
	sync.Mutex
	lines []string
}

func figure(t testing.TB, name string, value any, unit string) {
	t.Helper()
	var v string
	switch x := value.(type) {
	case float64:
		v = fmt.Sprintf("%.4g", x)
		if x >= 1000 || x <= -1000 {
			v = fmt.Sprintf("%.0f", x)
		}
	case time.Duration:
		v = fmt.Sprintf("%.1f", float64(x)/float64(time.Millisecond))
		if unit == "" {
			unit = "ms"
		}
	default:
		v = fmt.Sprint(x)
	}
	line := fmt.Sprintf("FIGURE %s=%s", name, v)
	if unit != "" {
		line += " " + unit
	}
	t.Log(line)
	figures.Lock()
	figures.lines = append(figures.lines, line+" backend="+backendName())
	figures.Unlock()
}

func printFigures() {
	figures.Lock()
	defer figures.Unlock()
	if len(figures.lines) == 0 || !testingVerbose() {
		return
	}
	sort.Strings(figures.lines)
	fmt.Println("--- figures measured by integration_test ---")
	for _, l := range figures.lines {
		fmt.Println(l)
	}
}

func testingVerbose() bool {
	defer func() { recover() }()
	return testing.Verbose()
}

// ---------------------------------------------------------------------------
// Clusters

var nodeSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// startCluster starts n nodes for the test (in parallel) and removes them
// when it ends, also on failure.
func startCluster(t testing.TB, n int, o nodeOptions) []node {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	be := getBackend(t)
	t.Logf("backend=%s: starting %d memcached nodes", be.Name(), n)
	nodes := make([]node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			base := unsafeName.ReplaceAllString(t.Name(), "-")
			if len(base) > 40 {
				base = base[len(base)-40:]
			}
			name := fmt.Sprintf("%s-%d-%d", strings.Trim(base, "-."), nodeSeq.Add(1), i)
			nodes[i], errs[i] = be.start(name, o)
		}(i)
	}
	wg.Wait()
	for i, nd := range nodes {
		if nd != nil {
			nd := nd
			t.Cleanup(func() {
				if err := be.remove(nd); err != nil {
					t.Errorf("removing %s: %v", nd.Name(), err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatalf("starting node %d on %s: %v", i, be.Name(), errs[i])
		}
	}
	for _, nd := range nodes {
		t.Logf("node %s at %s", nd.Name(), nd.Addr())
	}
	return nodes
}

func startNode(t testing.TB, o nodeOptions) node {
	t.Helper()
	return startCluster(t, 1, o)[0]
}

func addrs(nodes []node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Addr()
	}
	return out
}

// newClient returns a client of servers, closed when the test ends.
func newClient(t testing.TB, servers []string, opts ...libmemcached.Option) *libmemcached.Client {
	t.Helper()
	c, err := libmemcached.New(servers, opts...)
	require.NoError(t, err, "New(%v)", servers)
	t.Cleanup(func() { c.Close() })
	return c
}

// requireSupported skips the test when the backend cannot produce a fault.
func requireSupported(t testing.TB, err error, fault string) {
	t.Helper()
	if errors.Is(err, errUnsupported) {
		t.Skipf("%s: %v (backend=%s)", fault, err, backendName())
	}
	require.NoError(t, err, fault)
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// asError returns err as *libmemcached.Error, failing the test otherwise.
func asError(t testing.TB, err error) *libmemcached.Error {
	t.Helper()
	var e *libmemcached.Error
	require.True(t, errors.As(err, &e), "want a *libmemcached.Error, got %T: %v", err, err)
	return e
}

// ---------------------------------------------------------------------------
// Readiness: a binary-protocol VERSION round trip, which memcached answers
// before SASL authentication and whatever the -B setting. A TCP connect
// alone proves nothing on Docker, where docker-proxy accepts on the
// published port before memcached listens.

func probeVersion(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	req := make([]byte, 24)
	req[0], req[1] = 0x80, 0x0b // request magic, VERSION
	if _, err := c.Write(req); err != nil {
		return err
	}
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return err
	}
	if hdr[0] != 0x81 || hdr[1] != 0x0b {
		return fmt.Errorf("unexpected reply header % x", hdr[:8])
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if st := binary.BigEndian.Uint16(hdr[6:8]); st != 0 {
		return fmt.Errorf("VERSION status %#x", st)
	}
	return nil
}

// waitReady waits (at most limit) until addr answers VERSION; alive, if
// set, reports early that the server is gone.
func waitReady(addr string, limit time.Duration, alive func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		if last = probeVersion(addr, 250*time.Millisecond); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer VERSION within %v: %v", addr, limit, last)
}

func freePort() (int, error) { return memcachedtest.FreePort("127.0.0.1") }

// ---------------------------------------------------------------------------
// SASL: a sasldb with one user and a memcached.conf that points to it, in
// dir. realm must be the host name the server sees (memcached passes it to
// Cyrus SASL as the user realm); dbPath is the sasldb's path as the server
// sees it.

const saslRealmDocker = "memcached-sasl"

func makeSASLFiles(dir, realm, dbPath string, u saslUser) error {
	bin, err := exec.LookPath("saslpasswd2")
	if err != nil {
		return fmt.Errorf("saslpasswd2 is not installed: run scripts/install-deps.sh (Debian: apt-get install sasl2-bin libsasl2-modules libsasl2-modules-db)")
	}
	cmd := exec.Command(bin, "-f", dir+"/sasldb2", "-a", "memcached", "-u", realm, "-c", "-p", u.user)
	cmd.Stdin = strings.NewReader(u.password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2: %v: %s", err, out)
	}
	conf := "mech_list: plain\nsasldb_path: " + dbPath + "\n"
	return os.WriteFile(dir+"/memcached.conf", []byte(conf), 0o644)
}

// baseArgs are every node's memcached arguments: 64 MB, two threads, no
// UDP.
var baseArgs = []string{"-m", "64", "-t", "2", "-U", "0", "-c", "4096"}

// ---------------------------------------------------------------------------
// Child processes, for operations that may abort the process: the test
// binary runs itself with LIBMEMCACHED_IT_CHILD=op and the server address,
// does the one operation, prints "CHILD-RESULT <code>" and exits 0.

const childEnv = "LIBMEMCACHED_IT_CHILD"

func runChild(t testing.TB, op, addr string) (output string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+op, "LIBMEMCACHED_IT_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("running the child: %v", err)
		return "", -1
	}
}

func childMain(op string) int {
	c, err := libmemcached.New([]string{os.Getenv("LIBMEMCACHED_IT_ADDR")}, libmemcached.WithBinaryProtocol(),
		libmemcached.WithBehaviors(map[string]any{"connect_timeout": 1000, "_poll_timeout": 1000}))
	if err != nil {
		fmt.Println("CHILD-ERROR", err)
		return 3
	}
	defer c.Close()
	switch op {
	case "incr":
		_, err = c.Increment("sasl-counter", 1)
	case "decr":
		_, err = c.Decrement("sasl-counter", 1)
	default:
		fmt.Println("CHILD-ERROR unknown op", op)
		return 3
	}
	code := "success"
	var e *libmemcached.Error
	if errors.As(err, &e) {
		code = e.Code.String()
	} else if err != nil {
		code = err.Error()
	}
	fmt.Println("CHILD-RESULT", code, err)
	return 0
}
