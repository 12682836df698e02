package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
)

// The tests run memctl against a real memcached that TestMain starts on a
// free loopback port with server.go's own code. A missing memcached binary
// fails the run with the install hint.

var testServer *embeddedServer

func TestMain(m *testing.M) {
	s, err := startEmbedded(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting memcached:", err)
		os.Exit(1)
	}
	testServer = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// memctl runs the command in-process with stdin and the shared server
// (through -s, unless the arguments give servers themselves).
func memctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return result{out.String(), errb.String(), code}
}

// mc runs memctl -s <the test server> args.
func mc(t *testing.T, args ...string) result {
	t.Helper()
	return memctl(t, "", append([]string{"-s", testServer.Addr}, args...)...)
}

func (r result) want(t *testing.T, code int, stdout string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		t.Fatalf("exit %d, stdout %q (stderr %q); want exit %d, stdout %q", r.code, r.stdout, r.stderr, code, stdout)
	}
}

func (r result) wantErr(t *testing.T, code int, stderrParts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d (stdout %q, stderr %q); want %d", r.code, r.stdout, r.stderr, code)
	}
	for _, p := range stderrParts {
		if !strings.Contains(r.stderr, p) {
			t.Fatalf("stderr %q does not contain %q", r.stderr, p)
		}
	}
}

// client returns a library client of the shared server, to check what
// memctl did.
func client(t *testing.T, opts ...libmemcached.Option) *libmemcached.Client {
	t.Helper()
	c, err := libmemcached.New([]string{testServer.Addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	runIDs  sync.Map // *testing.T -> its run number
	lastRun atomic.Int64
)

// key returns a key unique to the test and to this run of it (go test
// -count=N runs it N times against the same server).
func key(t *testing.T, suffix string) string {
	id, ok := runIDs.Load(t)
	if !ok {
		id, _ = runIDs.LoadOrStore(t, lastRun.Add(1))
	}
	return fmt.Sprintf("%s:%d:%s", strings.ReplaceAll(t.Name(), "/", "."), id, suffix)
}

func TestSetGet(t *testing.T) {
	k, missing := key(t, "k"), key(t, "missing")
	mc(t, "set", k, "Hello world!").want(t, 0, "")
	mc(t, "get", k).want(t, 0, "Hello world!") // raw: no newline off a terminal

	r := mc(t, "get", k, missing, k)
	r.want(t, 1, k+": Hello world!\n"+k+": Hello world!\n")
	r.wantErr(t, 1, fmt.Sprintf("get %q: NOT FOUND", missing))

	mc(t, "get", missing).wantErr(t, 1, "libmemcached: get", strconv.Quote(missing), "NOT FOUND")
	if r := mc(t, "get", missing); r.stdout != "" {
		t.Fatalf("a miss printed %q", r.stdout)
	}
}

func TestSetFromStdin(t *testing.T) {
	k := key(t, "k")
	value := "line 1\nline 2\x00\xff"
	memctl(t, value, "-s", testServer.Addr, "set", k, "-").want(t, 0, "")
	mc(t, "get", k).want(t, 0, value)
}

func TestFlagsAndExptime(t *testing.T) {
	k := key(t, "k")
	// Flags may come before or after the command, with - or --.
	mc(t, "set", k, "v", "--flags", "7", "-exptime", "100").want(t, 0, "")
	it, err := client(t).Get(k)
	if err != nil || string(it.Value) != "v" || it.Flags != 7 {
		t.Fatalf("Get = %+v, %v; want value v, flags 7", it, err)
	}
	// "--" ends the flags: a value may start with "-".
	mc(t, "set", k, "--", "-1").want(t, 0, "")
	mc(t, "get", k).want(t, 0, "-1")
}

func TestConditionalStores(t *testing.T) {
	k, missing := key(t, "k"), key(t, "missing")
	mc(t, "add", k, "b").want(t, 0, "")
	mc(t, "add", k, "x").wantErr(t, 1, "libmemcached: add", "NOT STORED")
	mc(t, "replace", missing, "x").wantErr(t, 1, "NOT STORED")
	mc(t, "replace", k, "c").want(t, 0, "")
	mc(t, "append", k, "d").want(t, 0, "")
	mc(t, "prepend", k, "a").want(t, 0, "")
	mc(t, "get", k).want(t, 0, "acd")
	mc(t, "append", missing, "x").wantErr(t, 1, "NOT STORED")
}

func TestIncrDecr(t *testing.T) {
	k, missing := key(t, "n"), key(t, "missing")
	mc(t, "set", k, "5").want(t, 0, "")
	mc(t, "incr", k).want(t, 0, "6\n")
	mc(t, "incr", k, "10").want(t, 0, "16\n")
	mc(t, "decr", k, "3").want(t, 0, "13\n")
	mc(t, "decr", k, "100").want(t, 0, "0\n")
	mc(t, "incr", missing).wantErr(t, 1, "libmemcached: incr", "NOT FOUND")
	mc(t, "decr", missing, "2").wantErr(t, 1, "libmemcached: decr", "NOT FOUND")
	mc(t, "incr", k, "x").wantErr(t, 2, "N must be a non-negative integer")
	mc(t, "incr", k, "99999999999").want(t, 0, "99999999999\n")          // 64-bit deltas (from 0)
	mc(t, "incr", k, "18446744073709551615").want(t, 0, "99999999998\n") // + (2^64 - 1) wraps
	mc(t, "set", k, "abc").want(t, 0, "")
	mc(t, "incr", k).wantErr(t, 1, "CLIENT ERROR")
}

func TestDelete(t *testing.T) {
	a, b, missing := key(t, "a"), key(t, "b"), key(t, "missing")
	mc(t, "set", a, "1").want(t, 0, "")
	mc(t, "set", b, "2").want(t, 0, "")
	mc(t, "delete", a).want(t, 0, "")
	mc(t, "get", a).wantErr(t, 1, "NOT FOUND")
	mc(t, "delete", a).wantErr(t, 1, "libmemcached: delete", "NOT FOUND")
	// Several keys: every one is tried; a miss makes the status 1.
	r := mc(t, "delete", missing, b)
	r.wantErr(t, 1, strconv.Quote(missing))
	if strings.Contains(r.stderr, strconv.Quote(b)) {
		t.Fatalf("stderr %q reports %q, which was deleted", r.stderr, b)
	}
	mc(t, "get", b).wantErr(t, 1, "NOT FOUND")
}

func TestTouch(t *testing.T) {
	k := key(t, "k")
	mc(t, "set", k, "v").want(t, 0, "")
	mc(t, "touch", k, "100").want(t, 0, "")
	mc(t, "touch", key(t, "missing"), "100").wantErr(t, 1, "libmemcached: touch", "NOT FOUND")
	mc(t, "touch", k, "--", "-1").wantErr(t, 2, "SECONDS")
	mc(t, "touch", k, "soon").wantErr(t, 2, "SECONDS")
}

func TestFlush(t *testing.T) {
	// Its own server: a flush would disturb the other tests.
	s, err := startEmbedded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	memctl(t, "", "-s", s.Addr, "set", "k", "v").want(t, 0, "")
	memctl(t, "", "-s", s.Addr, "flush").want(t, 0, "")
	memctl(t, "", "-s", s.Addr, "get", "k").wantErr(t, 1, "NOT FOUND")
}

func TestStats(t *testing.T) {
	mc(t, "set", key(t, "k"), "v").want(t, 0, "")
	for _, args := range [][]string{{"stats"}, {"stats", "settings"}, {"stats", "slabs"}} {
		r := mc(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if lines[0] != testServer.Addr {
			t.Fatalf("%v: first line %q, want the server %q", args, lines[0], testServer.Addr)
		}
		var names []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if !strings.HasPrefix(l, "  ") || len(f) == 0 {
				t.Fatalf("%v: line %q is not \"  name value\"", args, l)
			}
			names = append(names, f[0])
		}
		if !sort.SliceIsSorted(names, func(i, j int) bool { return naturalLess(names[i], names[j]) }) {
			t.Fatalf("%v: names not sorted: %v", args, names)
		}
		want := map[string]string{"stats": "pid", "settings": "maxbytes", "slabs": "active_slabs"}[args[len(args)-1]]
		if !regexp.MustCompile(`(?m)^  ` + want + ` +\S`).MatchString(r.stdout) {
			t.Fatalf("%v: no %q line in\n%s", args, want, r.stdout)
		}
	}
	// An argument memcached does not know is the server's error.
	mc(t, "stats", "nonsense").wantErr(t, 1, "libmemcached: stats")
}

func TestNaturalLess(t *testing.T) {
	got := []string{"items:10:age", "items:2:number", "items:2:age", "b", "a10", "a9", "127.0.0.1:11211", "127.0.0.1:9000"}
	sort.Slice(got, func(i, j int) bool { return naturalLess(got[i], got[j]) })
	want := []string{"127.0.0.1:9000", "127.0.0.1:11211", "a9", "a10", "b", "items:2:age", "items:2:number", "items:10:age"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestVersionPingServers(t *testing.T) {
	r := mc(t, "version")
	if r.code != 0 || !regexp.MustCompile(`^`+regexp.QuoteMeta(testServer.Addr)+` \d+\.\d+\.\d+\S*\n$`).MatchString(r.stdout) {
		t.Fatalf("version: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mc(t, "ping").want(t, 0, "ok: 1 server answered\n")
	mc(t, "servers").want(t, 0, testServer.Addr+"\n")

	// Two servers (the second is never contacted by these commands).
	two := testServer.Addr + ", 127.0.0.1:1"
	memctl(t, "", "-s", two, "servers").want(t, 0, testServer.Addr+"\n127.0.0.1:1\n")
	r = memctl(t, "", "-s", two, "server-for", "some-key")
	if r.code != 0 || (r.stdout != testServer.Addr+"\n" && r.stdout != "127.0.0.1:1\n") {
		t.Fatalf("server-for: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestServersFromEnvironment(t *testing.T) {
	t.Setenv(serversEnv, "127.0.0.1:1,"+testServer.Addr)
	memctl(t, "", "servers").want(t, 0, "127.0.0.1:1\n"+testServer.Addr+"\n")
	// -s wins over the environment.
	memctl(t, "", "-s", testServer.Addr, "servers").want(t, 0, testServer.Addr+"\n")
	t.Setenv(serversEnv, "")
	memctl(t, "", "servers").want(t, 0, defaultServers+"\n")
}

func TestConnectionFailure(t *testing.T) {
	port, err := freePort() // nothing listens there any more
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for _, cmd := range [][]string{{"ping"}, {"get", "k"}, {"set", "k", "v"}, {"version"}, {"stats"}} {
		r := memctl(t, "", append([]string{"-s", addr, "--timeout", "500"}, cmd...)...)
		r.wantErr(t, 1, "libmemcached: ", "CONNECTION FAILURE")
		if r.stdout != "" {
			t.Fatalf("%v printed %q", cmd, r.stdout)
		}
	}
}

func TestBinaryNamespaceConfig(t *testing.T) {
	k := key(t, "with space")
	mc(t, "--binary", "set", k, "v").want(t, 0, "")
	mc(t, "--binary", "get", k).want(t, 0, "v")
	mc(t, "get", k).wantErr(t, 1, "BAD KEY", "ASCII protocol")

	k = key(t, "k")
	mc(t, "--namespace", "ns:", "set", k, "in a namespace").want(t, 0, "")
	mc(t, "get", "ns:"+k).want(t, 0, "in a namespace")
	mc(t, "--namespace", "ns:", "get", k).want(t, 0, "in a namespace")

	cfg := "--SERVER=" + testServer.Addr + " --BINARY-PROTOCOL"
	memctl(t, "", "--config", cfg, "set", k, "via config").want(t, 0, "")
	memctl(t, "", "--config", cfg, "get", k).want(t, 0, "via config")
	memctl(t, "", "--config", "--NO-SUCH-OPTION", "get", k).wantErr(t, 2, "PARSING")
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"-s", "x", "get", "-h"}} {
		r := memctl(t, "", args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, c := range commands {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c.name) + `\b`).MatchString(r.stdout) {
				t.Fatalf("%v: the usage does not list %q:\n%s", args, c.name, r.stdout)
			}
		}
		for _, f := range flagOrder {
			if !strings.Contains(r.stdout, "-"+f+" ") {
				t.Fatalf("%v: the usage does not list -%s", args, f)
			}
		}
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--frob", "get", "k"}, "flag provided but not defined: -frob"},
		{[]string{"get"}, "usage: memctl get KEY..."},
		{[]string{"set", "k"}, "usage: memctl set KEY VALUE"},
		{[]string{"set", "k", "v", "extra"}, "usage: memctl set KEY VALUE"},
		{[]string{"incr", "k", "1", "2"}, "usage: memctl incr KEY [N]"},
		{[]string{"version", "x"}, "usage: memctl version"},
		{[]string{"--exptime", "-1", "set", "k", "v"}, "--exptime -1"},
		{[]string{"--flags", "4294967296", "set", "k", "v"}, "flags are 32 bits"},
		{[]string{"--timeout", "-5", "ping"}, "--timeout -5"},
		{[]string{"-s", "a:1", "--config", "--SERVER=a", "ping"}, "not both"},
		{[]string{"-s", "", "ping"}, "-s names no server"},
		{[]string{"-s", "host:notaport", "ping"}, `bad port "notaport"`},
		{[]string{"--binary", "demo"}, "demo takes no --binary"},
		{[]string{"set", "k", "-5"}, "flag provided but not defined: -5"},
	}
	for _, c := range cases {
		r := memctl(t, "", c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "memctl -h") || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

// TestDemoAgainstGivenServer runs the demo in-process on the shared server:
// it must pass, and delete the keys it wrote.
func TestDemoAgainstGivenServer(t *testing.T) {
	r := mc(t, "demo")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	checkDemoOutput(t, r.stdout)
	if !strings.Contains(r.stdout, "Deleted the demo's keys.") {
		t.Fatalf("the demo did not clean up:\n%s", r.stdout)
	}
	got, err := client(t, libmemcached.WithBinaryProtocol()).GetMulti([]string{
		demoPrefix + "counter", demoPrefix + "binary key", demoPrefix + "pool:0", demoPrefix + "pool:hits", demoPrefix + "ketama"})
	if err != nil || len(got) != 0 {
		t.Fatalf("after the demo: %d of its keys remain (%v)", len(got), err)
	}
}

func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	for i, st := range demoSteps {
		header := fmt.Sprintf("== %d. %s ==", i+1, st.title)
		if !strings.Contains(out, header) {
			t.Errorf("the output lacks the step header %q", header)
		}
	}
	// The steps the demo must tell, whatever their titles become.
	for _, s := range []string{"Hello world!", "WithBinaryProtocol", `"tcp_nodelay": true, "ketama": true`,
		`distribution="consistent ketama"`, "GetMulti", "Increment", "Delete", "CompareAndSwap",
		"NewPool", "Stats()", "errors.Is(err, libmemcached.ErrCacheMiss)"} {
		if !strings.Contains(out, s) {
			t.Errorf("the output lacks %q", s)
		}
	}
	if want := fmt.Sprintf("All %d steps passed.", len(demoSteps)); !strings.Contains(out, want) {
		t.Errorf("the output lacks %q", want)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("the output reports a failure")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// buildMemctl builds the command into a temporary directory.
func buildMemctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memctl")
	args := []string{"build", "-o", bin}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// envWithoutServers is the environment without MEMCACHED_SERVERS.
func envWithoutServers() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, serversEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

var pidRE = regexp.MustCompile(`started \S+ on (127\.0\.0\.1:\d+) \(pid (\d+)\)`)

// processGone reports whether pid no longer exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestDemoBinary builds memctl and runs "memctl demo" as make demo does:
// with no server given, it starts its own memcached, passes every step,
// and stops the server.
func TestDemoBinary(t *testing.T) {
	bin := buildMemctl(t)
	cmd := exec.Command(bin, "demo")
	cmd.Env = envWithoutServers()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	if err != nil {
		t.Fatalf("memctl demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	checkDemoOutput(t, out)
	m := pidRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo did not say which memcached it started:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[2])
	if !processGone(pid) {
		t.Fatalf("the demo's memcached (pid %d) still runs", pid)
	}
	if !strings.Contains(out, fmt.Sprintf("Stopped the demo's memcached (pid %d).", pid)) {
		t.Fatalf("the demo did not report stopping its server:\n%s", out)
	}
}

// TestDemoBinaryInterrupted sends SIGINT to "memctl demo" once its server
// runs: memctl must stop the server and exit 130 (or 0, if the demo won
// the race), never leave memcached behind.
func TestDemoBinaryInterrupted(t *testing.T) {
	bin := buildMemctl(t)
	cmd := exec.Command(bin, "demo")
	cmd.Env = envWithoutServers()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	pid := 0
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if m := pidRE.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[2])
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no server line in the demo's output:\n%s", seen.String())
	}
	cmd.Process.Signal(os.Interrupt)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	switch code {
	case exitInterrupted:
		if !strings.Contains(stderr.String(), "memctl: interrupted") {
			t.Errorf("stderr %q does not say it was interrupted", stderr.String())
		}
	case exitOK:
		t.Logf("the demo finished before the signal arrived")
	default:
		t.Errorf("exit %d (%v); want %d\nstdout:\n%s\nstderr:\n%s", code, err, exitInterrupted, seen.String(), stderr.String())
	}
	if !processGone(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("memctl left its memcached (pid %d) running", pid)
	}
}

// TestInterruptStopsServer checks withEmbeddedServer's signal path in
// process: SIGINT stops the server while the work is still running, and the
// result is errInterrupted.
func TestInterruptStopsServer(t *testing.T) {
	ctx, stop := signalContext()
	defer stop()
	var srv *embeddedServer
	err := withEmbeddedServer(ctx, func(ctx context.Context, s *embeddedServer) error {
		srv = s
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			return errors.New("SIGINT did not cancel the context")
		}
		deadline := time.Now().Add(10 * time.Second)
		for !s.Exited() {
			if time.Now().After(deadline) {
				return errors.New("the server still runs after SIGINT")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("withEmbeddedServer = %v, want errInterrupted", err)
	}
	if srv == nil || !srv.Exited() {
		t.Fatal("the server was not stopped")
	}
}

// TestDemoWithoutMemcached: with no memcached to start, the demo fails
// with the install hint.
func TestDemoWithoutMemcached(t *testing.T) {
	saved := memcachedtest.BinaryPaths
	memcachedtest.BinaryPaths = nil
	defer func() { memcachedtest.BinaryPaths = saved }()
	t.Setenv("PATH", t.TempDir())
	t.Setenv(serversEnv, "")
	r := memctl(t, "", "demo")
	r.wantErr(t, 1, "memctl: "+installHint)
}

// TestStopIsIdempotent: Stop may be called twice and concurrently.
func TestStopIsIdempotent(t *testing.T) {
	s, err := startEmbedded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	s.Stop()
	<-done
	s.Stop()
	if !s.Exited() || !processGone(s.Pid()) {
		t.Fatal("the server still runs")
	}
}
