package memcachedtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TwemproxyInstallHint is the text of ErrNoTwemproxy.
const TwemproxyInstallHint = "twemproxy (nutcracker) is not installed: run scripts/install-deps.sh (Debian, Ubuntu: apt-get install nutcracker; macOS: brew install twemproxy)"

// ErrNoTwemproxy means no nutcracker binary was found. Tests fail with it;
// they never skip.
var ErrNoTwemproxy = errors.New(TwemproxyInstallHint)

// TwemproxyPaths are the install locations TwemproxyBinary tries, in
// order, when nutcracker is not on PATH (Debian installs it in /usr/sbin,
// which is not on every user's PATH). Tests of the no-binary case empty it.
var TwemproxyPaths = []string{"/usr/sbin/nutcracker", "/usr/bin/nutcracker", "/usr/local/sbin/nutcracker", "/usr/local/bin/nutcracker", "/opt/homebrew/bin/nutcracker"}

// TwemproxyBinary returns the path of the nutcracker binary: from PATH,
// else the usual install locations, else ErrNoTwemproxy.
func TwemproxyBinary() (string, error) {
	return lookBinary("nutcracker", TwemproxyPaths, ErrNoTwemproxy)
}

// TwemproxyConfig says how to start twemproxy in front of memcached
// servers: one pool listening on a free port of 127.0.0.1, with its stats
// server on another free port of 127.0.0.1.
type TwemproxyConfig struct {
	// Servers are the memcached servers behind the proxy, "host:port";
	// each gets weight 1. At least one is needed.
	Servers []string
	// Hash and Distribution are twemproxy's settings (default
	// "fnv1a_64" and "ketama").
	Hash, Distribution string
	// Timeout is how long twemproxy waits for a server's answer before it
	// answers the client with an error (default 2 s).
	Timeout time.Duration
	// Args are more nutcracker arguments ("-v", "7", ...).
	Args []string
	// Output, when set, receives nutcracker's log (it logs to its
	// stderr); the first 4 KiB are kept for errors either way.
	Output io.Writer
	// Ready is how long StartTwemproxy waits for the proxy to accept
	// connections (default 5 s).
	Ready time.Duration
}

// Twemproxy is a nutcracker process.
type Twemproxy struct {
	// Addr is what clients dial: "127.0.0.1:port".
	Addr string
	// Port is the proxy's port, StatsPort its stats server's (which
	// answers every connection with a JSON document).
	Port, StatsPort int
	// Servers are the memcached servers behind it.
	Servers []string
	// Bin is the nutcracker binary, Args its arguments; ConfigFile is the
	// YAML configuration it was given (removed by Stop).
	Bin        string
	Args       []string
	ConfigFile string

	process
	dir        string
	removeOnce sync.Once
}

// StartTwemproxy writes a configuration for cfg, starts nutcracker with it
// and waits until the proxy accepts connections. It returns ErrNoTwemproxy
// when there is no binary, and ctx.Err() if ctx ends first. twemproxy
// connects to the servers on the first request that needs them; it does
// not check them at start.
func StartTwemproxy(ctx context.Context, cfg TwemproxyConfig) (*Twemproxy, error) {
	bin, err := TwemproxyBinary()
	if err != nil {
		return nil, err
	}
	if len(cfg.Servers) == 0 {
		return nil, errors.New("twemproxy: no servers to put behind the proxy")
	}
	if cfg.Hash == "" {
		cfg.Hash = "fnv1a_64"
	}
	if cfg.Distribution == "" {
		cfg.Distribution = "ketama"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	return tries(ctx, 5, func() (*Twemproxy, error) {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		statsPort, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		return launchTwemproxy(ctx, bin, cfg, port, statsPort)
	})
}

// twemproxyYAML is the configuration of one pool named "test".
func twemproxyYAML(cfg TwemproxyConfig, addr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "test:\n  listen: %s\n  hash: %s\n  distribution: %s\n", addr, cfg.Hash, cfg.Distribution)
	fmt.Fprintf(&b, "  timeout: %d\n  auto_eject_hosts: false\n  servers:\n", cfg.Timeout.Milliseconds())
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, "    - %s:1\n", s)
	}
	return b.String()
}

func launchTwemproxy(ctx context.Context, bin string, cfg TwemproxyConfig, port, statsPort int) (*Twemproxy, error) {
	dir, err := os.MkdirTemp("", "twemproxytest-")
	if err != nil {
		return nil, err
	}
	p := &Twemproxy{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, StatsPort: statsPort,
		Servers: append([]string(nil), cfg.Servers...), Bin: bin, ConfigFile: filepath.Join(dir, "nutcracker.yml"), dir: dir,
	}
	if err := os.WriteFile(p.ConfigFile, []byte(twemproxyYAML(cfg, p.Addr)), 0o600); err != nil {
		p.Stop()
		return nil, err
	}
	// The log goes to stderr (kept for errors), not to Debian's default
	// /var/log/nutcracker; the stats server listens on loopback only (the
	// default is every address); no pid file is written without -p.
	p.Args = append([]string{"-c", p.ConfigFile, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1", "-o", "/dev/stderr"}, cfg.Args...)
	if err := p.start(bin, p.Args, nil, cfg.Output); err != nil {
		p.Stop()
		return nil, err
	}
	if err := p.waitAccepting(ctx, "tcp", p.Addr, cfg.Ready, "nutcracker "+strings.Join(p.Args, " ")); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Stop kills the proxy, waits for it to exit and removes its
// configuration. It may be called more than once, from several goroutines,
// and on a nil Twemproxy.
func (p *Twemproxy) Stop() {
	if p == nil {
		return
	}
	p.process.Stop()
	p.removeOnce.Do(func() { os.RemoveAll(p.dir) })
}
