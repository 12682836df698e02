package memcachedtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exchange sends req to addr and reads n lines of the answer.
func exchange(t *testing.T, addr, req string, n int) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var lines []string
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q to %s: after %q: %v", req, addr, lines, err)
		}
		lines = append(lines, strings.TrimRight(line, "\r\n"))
	}
	return lines
}

// The proxy forwards to the servers behind it, spreading keys over all of
// them, with the configuration the tests rely on; Stop ends it and removes
// its configuration.
func TestTwemproxyForwardsAndStops(t *testing.T) {
	a, b := start(t, Config{}), start(t, Config{})
	p, err := StartTwemproxy(context.Background(), TwemproxyConfig{Servers: []string{a.Addr, b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if p.Addr != "127.0.0.1:"+strconv.Itoa(p.Port) || p.StatsPort == 0 || p.StatsPort == p.Port {
		t.Fatalf("Addr %q, Port %d, StatsPort %d", p.Addr, p.Port, p.StatsPort)
	}
	conf, err := os.ReadFile(p.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen: " + p.Addr, "hash: fnv1a_64", "distribution: ketama", "auto_eject_hosts: false", "- " + a.Addr + ":1", "- " + b.Addr + ":1"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("configuration lacks %q:\n%s", want, conf)
		}
	}
	if got := strings.Join(p.Args, " "); !strings.Contains(got, "-s "+strconv.Itoa(p.StatsPort)+" -a 127.0.0.1") {
		t.Errorf("arguments %q: the stats server must listen on loopback", got)
	}

	// twemproxy's fnv1a_64 keeps the hash's low 32 bits, which mix the
	// last bytes of a key poorly: keys that differ only at their end
	// cluster on one server. These differ at the front.
	const n = 40
	for i := 0; i < n; i++ {
		if got := exchange(t, p.Addr, fmt.Sprintf("set %d:k 0 0 2\r\nv%d\r\n", i, i%10), 1); got[0] != "STORED" {
			t.Fatalf("set through the proxy: %q", got)
		}
	}
	perServer := map[string]int{}
	for i := 0; i < n; i++ {
		if got := exchange(t, p.Addr, fmt.Sprintf("get %d:k\r\n", i), 3); got[1] != fmt.Sprint("v", i%10) {
			t.Fatalf("get %d:k through the proxy: %q", i, got)
		}
		for _, s := range []*Server{a, b} {
			if exchange(t, s.Addr, fmt.Sprintf("get %d:k\r\n", i), 1)[0] != "END" {
				perServer[s.Addr]++
			}
		}
	}
	if perServer[a.Addr] == 0 || perServer[b.Addr] == 0 || perServer[a.Addr]+perServer[b.Addr] != n {
		t.Fatalf("keys per server: %v (each key on exactly one, every server some)", perServer)
	}
	if got := exchange(t, p.Addr, "version\r\n", 1); !strings.HasPrefix(got[0], "VERSION ") {
		t.Fatalf("version through the proxy: %q", got)
	}
	if got := exchange(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.StatsPort)), "", 1); !strings.Contains(got[0], `"service":"nutcracker"`) {
		t.Fatalf("stats server: %.200q", got)
	}

	done := make(chan struct{})
	go func() { p.Stop(); close(done) }()
	p.Stop()
	<-done
	if !p.Exited() {
		t.Fatal("Stop returned with the proxy running")
	}
	if c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a stopped proxy accepts connections")
	}
	if _, err := os.Stat(p.ConfigFile); !os.IsNotExist(err) {
		t.Fatalf("the configuration outlives Stop: %v", err)
	}
}

func TestTwemproxyFailures(t *testing.T) {
	s := start(t, Config{})
	if _, err := StartTwemproxy(context.Background(), TwemproxyConfig{}); err == nil || !strings.Contains(err.Error(), "no servers") {
		t.Errorf("no servers: %v", err)
	}
	if _, err := StartTwemproxy(context.Background(), TwemproxyConfig{Servers: []string{s.Addr}, Hash: "no-such-hash"}); err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("a bad configuration: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := StartTwemproxy(ctx, TwemproxyConfig{Servers: []string{s.Addr}}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: %v", err)
	}
	var nilProxy *Twemproxy
	nilProxy.Stop()

	// No binary is an error that says how to install it, never a skip.
	saved := TwemproxyPaths
	TwemproxyPaths = nil
	defer func() { TwemproxyPaths = saved }()
	t.Setenv("PATH", t.TempDir())
	_, err := StartTwemproxy(context.Background(), TwemproxyConfig{Servers: []string{s.Addr}})
	if !errors.Is(err, ErrNoTwemproxy) || !strings.Contains(err.Error(), "scripts/install-deps.sh") || !strings.Contains(err.Error(), "apt-get install nutcracker") {
		t.Errorf("no binary: %v", err)
	}
}
