// Command memctl is a small memcached client built on package libmemcached,
// the Go counterpart of pylibmc. It reads and writes items, shows servers'
// statistics and versions; "memctl demo" walks through the library's main
// features, and "memctl bench" compares it with the other Go memcached
// clients and with the same loops in C, both starting their own memcached
// when no server is given.
//
// memctl is a module of its own (its go.mod replaces the library with the
// enclosing directory), so that the clients it compares never enter the
// library's module graph.
//
// Run "memctl -h" for the commands, flags and exit statuses.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/libmemcached-go/libmemcached"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1 // an operation failed: a miss, NOT STORED, a server error
	exitUsage       = 2 // bad command line
	exitInterrupted = 130
)

// defaultServers is used by the ordinary commands when neither -s nor
// MEMCACHED_SERVERS nor --config names a server.
const defaultServers = "127.0.0.1:11211"

// serversEnv is the environment variable read when -s is not given.
const serversEnv = "MEMCACHED_SERVERS"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

// Error returns the usage message.
func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errReported means the command already printed its failures on stderr;
// the exit status is 1.
var errReported = errors.New("failures reported")

// settings are the parsed flags.
type settings struct {
	servers   string
	binary    bool
	flags     uint64
	exptime   int64
	namespace string
	timeout   int64
	config    string
	given     map[string]bool // the flags present on the command line

	// bench
	window    time.Duration
	warmup    time.Duration
	rounds    int
	poolSize  int
	jsonPath  string
	chartPath string
	scenario  string
	clients   string
	list      bool
	// serverCounts is --servers, checked by bench.
	serverCounts string
}

// app is one run of memctl.
type app struct {
	cfg    settings
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	mc     *libmemcached.Client // for the commands that talk to servers
}

// command is a memctl subcommand.
type command struct {
	name     string
	args     string // synopsis of its arguments
	help     string // one line or more, "\n"-separated
	min, max int    // argument counts; max < 0: no limit
	noClient bool   // the command makes its own clients (demo, help)
	run      func(a *app, args []string) error
}

var commands []*command

func init() {
	store := func(name, help string, op func(*libmemcached.Client, *libmemcached.Item) error) *command {
		return &command{name: name, args: "KEY VALUE", help: help, min: 2, max: 2,
			run: func(a *app, args []string) error { return a.store(op, args[0], args[1]) }}
	}
	commands = []*command{
		{name: "get", args: "KEY...", min: 1, max: -1, run: (*app).get,
			help: "print values: one KEY prints its raw value (a newline is added only on\n" +
				"a terminal); several print \"KEY: value\" lines in the order given.\n" +
				"A missing key is reported on stderr and makes the exit status 1."},
		store("set", "store VALUE under KEY (VALUE \"-\" reads it from stdin)", (*libmemcached.Client).Set),
		store("add", "store only if KEY is absent (else NOT STORED, exit 1)", (*libmemcached.Client).Add),
		store("replace", "store only if KEY is present (else NOT STORED, exit 1)", (*libmemcached.Client).Replace),
		store("append", "append VALUE to KEY's value (KEY must exist)", (*libmemcached.Client).Append),
		store("prepend", "prepend VALUE to KEY's value (KEY must exist)", (*libmemcached.Client).Prepend),
		{name: "delete", args: "KEY...", min: 1, max: -1, run: (*app).delete,
			help: "delete keys; a missing key is reported and makes the exit status 1"},
		{name: "incr", args: "KEY [N]", min: 1, max: 2, run: func(a *app, args []string) error { return a.incr(false, args) },
			help: "add N (default 1, at most 4294967295) to KEY's decimal value; print it"},
		{name: "decr", args: "KEY [N]", min: 1, max: 2, run: func(a *app, args []string) error { return a.incr(true, args) },
			help: "subtract N (default 1) from KEY's decimal value, stopping at 0; print it"},
		{name: "touch", args: "KEY SECONDS", min: 2, max: 2, run: (*app).touch,
			help: "give KEY a new expiration time (0: never expires)"},
		{name: "stats", args: "[ARG]", min: 0, max: 1, run: (*app).stats,
			help: "statistics of every server, sorted by server, then by name\n" +
				"(numbers in names in numeric order: items:2 before items:10);\n" +
				"ARG picks a group: items, slabs, settings, sizes, conns, ..."},
		{name: "version", min: 0, max: 0, run: (*app).version,
			help: "each server's memcached version"},
		{name: "flush", min: 0, max: 0, run: func(a *app, _ []string) error { return a.mc.FlushAll() },
			help: "invalidate every item on every server"},
		{name: "ping", min: 0, max: 0, run: (*app).ping,
			help: "check that every server answers"},
		{name: "servers", min: 0, max: 0, run: (*app).servers,
			help: "list the servers, in libmemcached's order (does not connect)"},
		{name: "server-for", args: "KEY", min: 1, max: 1, run: (*app).serverFor,
			help: "the server KEY maps to under the client's hash and distribution"},
		{name: "demo", min: 0, max: 0, noClient: true, run: (*app).demo,
			help: "walk through the library's features, checking every result; with no\n" +
				"-s and no $" + serversEnv + " it starts (and stops) its own memcached\n" +
				"on a free 127.0.0.1 port. It takes no other flag."},
		{name: "bench", min: 0, max: 0, noClient: true, run: (*app).bench,
			help: "compare this library with the other Go memcached clients and with the\n" +
				"same loops in C, side by side in one process (see Bench flags);\n" +
				"with no -s it starts (and stops) its own memcached (-t 2), one and\n" +
				"then three (see --servers), on free 127.0.0.1 ports. It ignores\n" +
				"$" + serversEnv + ": name real servers with -s. With the defaults a\n" +
				"run takes " + defaultRunTime + "."},
		{name: "help", min: 0, max: 0, noClient: true, run: func(a *app, _ []string) error { a.usage(a.stdout); return nil },
			help: "print this help"},
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// newFlagSet defines memctl's flags on s.
func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("memctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&s.servers, "s", "", "`servers`, comma-separated (default: $"+serversEnv+", else\n"+defaultServers+")")
	fs.BoolVar(&s.binary, "binary", false, "speak the binary protocol (keys may then hold any bytes)")
	fs.Uint64Var(&s.flags, "flags", 0, "the 32-bit `N` stored with values by set, add and replace")
	fs.Int64Var(&s.exptime, "exptime", 0, "expiration of stored values: `seconds` (up to 30 days), or a Unix\ntime; 0: never")
	fs.StringVar(&s.namespace, "namespace", "", "`prefix` put before every key on the wire")
	fs.Int64Var(&s.timeout, "timeout", 0, "connect and poll timeout in `ms` (default: libmemcached's, 4000\nand 5000)")
	fs.StringVar(&s.config, "config", "", "libmemcached configuration `string`, e.g.\n\"--SERVER=host:11211 --BINARY-PROTOCOL\"; it names the servers, so\nit excludes -s")
	fs.DurationVar(&s.window, "window", defaultWindow, "how long each measured window lasts (a `duration`: 1s, 500ms)")
	fs.IntVar(&s.rounds, "rounds", defaultRounds, "`N` rounds; each runs every client once per scenario, and the\ntable shows the median")
	fs.DurationVar(&s.warmup, "warmup", defaultWarmup, "unmeasured `duration` each client runs before a scenario's rounds")
	fs.IntVar(&s.poolSize, "pool", defaultPoolSize, "`size` of this library's Pool (and of libmc's and the C floor's\nhandle pools) in the concurrent scenarios")
	fs.StringVar(&s.scenario, "scenario", "", "run only these scenarios: comma-separated `names` or patterns\n(par*-get,get-100B)")
	fs.StringVar(&s.serverCounts, "servers", defaultServerCounts, "with no -s: run the scenarios over each of these `counts` of\n"+
		"memcached it starts (-t 2 each; comma-separated): rows over N > 1\n"+
		"servers are named NAME@Nsrv (par64-get@3srv), and only the multi-key\n"+
		"and concurrent scenarios run over more than one; it excludes -s")
	fs.StringVar(&s.clients, "clients", "", "run only these clients: comma-separated `names` or patterns\n(lmc-*,gomemcache)")
	fs.StringVar(&s.jsonPath, "json", "", "also write the results, with the machine's description, to `FILE`")
	fs.StringVar(&s.chartPath, "chart", "", "also draw the ratios to gomemcache as a bar chart in `FILE`.png")
	fs.BoolVar(&s.list, "list", false, "list the scenarios and clients, and run nothing")
	return fs
}

// flagOrder is the order of the flags in the help text.
var flagOrder = []string{"s", "config", "binary", "namespace", "flags", "exptime", "timeout"}

// benchFlagOrder is the order of the bench flags in the help text; only
// bench takes them.
var benchFlagOrder = []string{"window", "rounds", "warmup", "pool", "scenario", "servers", "clients", "json", "chart", "list"}

// usage writes the help text.
func (a *app) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`memctl: a memcached client on libmemcached ` + libmemcached.LibraryVersion + ` (Go counterpart of pylibmc)

Usage:
  memctl [flags] COMMAND [ARGS...]

Commands:
`)
	for _, c := range commands {
		syn := c.name
		if c.args != "" {
			syn += " " + c.args
		}
		for i, line := range strings.Split(c.help, "\n") {
			if i == 0 {
				fmt.Fprintf(&b, "  %-19s %s\n", syn, line)
			} else {
				fmt.Fprintf(&b, "  %-19s %s\n", "", line)
			}
		}
	}
	b.WriteString(`
Flags (-name or --name, before or after the command; "--" ends them,
as in: memctl set k -- -1):
`)
	var s settings
	fs := newFlagSet(&s)
	writeFlags := func(names []string) {
		for _, name := range names {
			f := fs.Lookup(name)
			arg, help := flag.UnquoteUsage(f)
			syn := "--" + f.Name
			if len(f.Name) == 1 {
				syn = "-" + f.Name
			}
			if arg != "" {
				syn += " " + arg
			}
			for i, line := range strings.Split(help, "\n") {
				if i > 0 {
					syn = ""
				}
				fmt.Fprintf(&b, "  %-19s %s\n", syn, line)
			}
		}
	}
	writeFlags(flagOrder)
	b.WriteString(`
Bench flags (memctl bench [-s SERVERS] [flags]; defaults ` + benchDefaultsText() + `;
"memctl bench --list" names the scenarios and clients):
`)
	writeFlags(benchFlagOrder)
	b.WriteString(`
Servers come from -s or --config, else $` + serversEnv + `, else ` + defaultServers + `;
-s and $` + serversEnv + ` are comma-separated host[:port[:weight]], [ipv6]:port or
/socket/path.
Commands that change data print nothing when they succeed.

Exit status:
  0    success
  1    an operation failed: a miss, NOT STORED, a server or connection error
       (the message, with libmemcached's error text, is on stderr)
       (bench: any error in any row, such as a wrong value read back)
  2    usage error
  130  interrupted (demo, bench)
`)
	io.WriteString(w, b.String())
}

// run runs memctl with args (without the program name) and returns the
// exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := newFlagSet(&a.cfg)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		a.usage(stdout)
		return exitOK
	}
	if err == nil {
		a.cfg.given = map[string]bool{}
		fs.Visit(func(f *flag.Flag) { a.cfg.given[f.Name] = true })
		err = a.check(pos)
	}
	if err == nil {
		err = a.dispatch(pos)
	}
	return a.exit(err)
}

// exit reports err and returns the exit status for it.
func (a *app) exit(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "memctl: %s\nRun 'memctl -h' for usage.\n", ue.msg)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailed
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(a.stderr, "memctl: interrupted")
		return exitInterrupted
	default:
		fmt.Fprintf(a.stderr, "memctl: %v\n", err)
		return exitFailed
	}
}

// parseInterleaved parses flags found anywhere among args and returns the
// other arguments in order. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// check validates the flags and the command's argument count.
func (a *app) check(pos []string) error {
	if len(pos) == 0 {
		return usagef("no command given")
	}
	c := lookup(pos[0])
	if c == nil {
		return usagef("unknown command %q", pos[0])
	}
	n := len(pos) - 1
	if n < c.min || (c.max >= 0 && n > c.max) {
		syn := c.name
		if c.args != "" {
			syn += " " + c.args
		}
		return usagef("usage: memctl %s", syn)
	}
	s := &a.cfg
	if s.flags > math.MaxUint32 {
		return usagef("--flags %d: flags are 32 bits (at most %d)", s.flags, uint32(math.MaxUint32))
	}
	if s.exptime < 0 || s.exptime > math.MaxInt32 {
		return usagef("--exptime %d: it must be between 0 and %d", s.exptime, math.MaxInt32)
	}
	if s.timeout < 0 {
		return usagef("--timeout %d: it cannot be negative", s.timeout)
	}
	if s.given["s"] && s.given["config"] {
		return usagef("give the servers with -s or with --config, not both")
	}
	if c.name == "demo" {
		for name := range s.given {
			if name != "s" {
				return usagef("demo takes no --%s: it shows the protocols, behaviors and options itself", name)
			}
		}
	}
	if c.name == "bench" {
		for name := range s.given {
			if name != "s" && !contains(benchFlagOrder, name) {
				return usagef("bench takes no --%s: it runs both protocols with default options itself", name)
			}
		}
	} else {
		for name := range s.given {
			if contains(benchFlagOrder, name) {
				return usagef("--%s is a bench flag", name)
			}
		}
	}
	return nil
}

// serverList returns the servers from -s or $MEMCACHED_SERVERS, and
// whether one of them named any; otherwise it returns def.
func (a *app) serverList(def string) ([]string, bool, error) {
	spec, from := def, ""
	if a.cfg.given["s"] {
		spec, from = a.cfg.servers, "-s"
	} else if env, ok := os.LookupEnv(serversEnv); ok && strings.TrimSpace(env) != "" {
		spec, from = env, "$"+serversEnv
	}
	var out []string
	for _, s := range strings.Split(spec, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 && from != "" {
		return nil, true, usagef("%s names no server", from)
	}
	return out, from != "", nil
}

// clientOptions turns the flags into library options.
func (a *app) clientOptions() []libmemcached.Option {
	var opts []libmemcached.Option
	if a.cfg.binary {
		opts = append(opts, libmemcached.WithBinaryProtocol())
	}
	if a.cfg.given["namespace"] {
		opts = append(opts, libmemcached.WithNamespace(a.cfg.namespace))
	}
	if a.cfg.given["timeout"] {
		ms := uint64(a.cfg.timeout)
		opts = append(opts,
			libmemcached.WithBehavior(libmemcached.BehaviorConnectTimeout, ms),
			libmemcached.WithBehavior(libmemcached.BehaviorPollTimeout, ms))
	}
	return opts
}

// connect makes the client for an ordinary command. New does not connect:
// a server that is down shows as the first operation's error. A client
// that cannot even be made (a malformed address or configuration) is a
// usage error.
func (a *app) connect() error {
	var mc *libmemcached.Client
	var err error
	if a.cfg.given["config"] {
		mc, err = libmemcached.NewFromConfig(a.cfg.config, a.clientOptions()...)
	} else {
		var servers []string
		if servers, _, err = a.serverList(defaultServers); err != nil {
			return err
		}
		mc, err = libmemcached.New(servers, a.clientOptions()...)
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	a.mc = mc
	return nil
}

func (a *app) dispatch(pos []string) error {
	c := lookup(pos[0])
	if !c.noClient {
		if err := a.connect(); err != nil {
			return err
		}
		defer a.mc.Close()
	}
	return c.run(a, pos[1:])
}

// ---------------------------------------------------------------------------
// Commands

func (a *app) get(keys []string) error {
	if len(keys) == 1 {
		it, err := a.mc.Get(keys[0])
		if err != nil {
			return err
		}
		a.stdout.Write(it.Value)
		if isTerminal(a.stdout) && !bytes.HasSuffix(it.Value, []byte("\n")) {
			io.WriteString(a.stdout, "\n")
		}
		return nil
	}
	items, err := a.mc.GetMulti(keys)
	missing := false
	for _, k := range keys {
		if it, ok := items[k]; ok {
			fmt.Fprintf(a.stdout, "%s: %s\n", k, it.Value)
		} else if err == nil { // with an error, absent keys may not be misses
			fmt.Fprintf(a.stderr, "memctl: get %q: %s\n", k, libmemcached.ReturnNotFound.Description())
			missing = true
		}
	}
	if err != nil {
		return err
	}
	if missing {
		return errReported
	}
	return nil
}

func (a *app) store(op func(*libmemcached.Client, *libmemcached.Item) error, key, value string) error {
	v := []byte(value)
	if value == "-" {
		var err error
		if v, err = io.ReadAll(a.stdin); err != nil {
			return fmt.Errorf("reading the value from stdin: %w", err)
		}
	}
	return op(a.mc, &libmemcached.Item{Key: key, Value: v, Flags: uint32(a.cfg.flags), Expiration: int32(a.cfg.exptime)})
}

func (a *app) delete(keys []string) error {
	failed := false
	for _, k := range keys {
		if err := a.mc.Delete(k); err != nil {
			fmt.Fprintf(a.stderr, "memctl: %v\n", err)
			failed = true
		}
	}
	if failed {
		return errReported
	}
	return nil
}

func (a *app) incr(decr bool, args []string) error {
	delta := uint64(1)
	if len(args) == 2 {
		var err error
		if delta, err = strconv.ParseUint(args[1], 10, 64); err != nil {
			return usagef("N must be a non-negative integer, not %q", args[1])
		}
	}
	var v uint64
	var err error
	if decr {
		v, err = a.mc.Decrement(args[0], delta)
	} else {
		v, err = a.mc.Increment(args[0], delta)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, v)
	return nil
}

func (a *app) touch(args []string) error {
	sec, err := strconv.ParseInt(args[1], 10, 32)
	if err != nil || sec < 0 {
		return usagef("SECONDS must be an integer from 0 to %d, not %q", math.MaxInt32, args[1])
	}
	return a.mc.Touch(args[0], int32(sec))
}

// allServers returns the client's servers and any other names in m, in
// natural order (127.0.0.1:9000 before 127.0.0.1:11211).
func allServers[V any](mc *libmemcached.Client, m map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range mc.Servers() {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for s := range m {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	return out
}

func (a *app) stats(args []string) error {
	var st map[string]map[string]string
	var err error
	if len(args) == 1 {
		st, err = a.mc.StatsArg(args[0])
	} else {
		st, err = a.mc.Stats()
	}
	for _, server := range allServers(a.mc, st) {
		m, ok := st[server]
		if !ok && err != nil {
			continue // the error tells about it
		}
		fmt.Fprintln(a.stdout, server)
		names := make([]string, 0, len(m))
		width := 0
		for name := range m {
			names = append(names, name)
			width = max(width, len(name))
		}
		sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
		for _, name := range names {
			fmt.Fprintf(a.stdout, "  %-*s %s\n", width, name, m[name])
		}
		if len(names) == 0 {
			fmt.Fprintln(a.stdout, "  (no statistics)")
		}
	}
	return err
}

func (a *app) version(_ []string) error {
	v, err := a.mc.Version()
	for _, server := range allServers(a.mc, v) {
		if ver, ok := v[server]; ok {
			fmt.Fprintf(a.stdout, "%s %s\n", server, ver)
		}
	}
	return err
}

func (a *app) ping(_ []string) error {
	if err := a.mc.Ping(); err != nil {
		return err
	}
	n := len(a.mc.Servers())
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(a.stdout, "ok: %d server%s answered\n", n, plural)
	return nil
}

func (a *app) servers(_ []string) error {
	for _, s := range a.mc.Servers() {
		fmt.Fprintln(a.stdout, s)
	}
	return nil
}

func (a *app) serverFor(args []string) error {
	s, err := a.mc.ServerFor(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, s)
	return nil
}

// naturalLess orders strings with their runs of digits compared as
// numbers, so that "items:2:age" comes before "items:10:age".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

// digitRun returns the number of ASCII digits s starts with.
func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
