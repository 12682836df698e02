package libmemcached

// Server strings: parsing "host:port:weight", "[v6]:port", socket paths
// and pylibmc's "udp:" forms.

import (
	"fmt"
	"strconv"
	"strings"
)

type serverSpec struct {
	host   string
	port   int
	weight int
	socket bool
	udp    bool // pylibmc's "udp:host:port"
}

// String formats the server as libmemcached names it: "host:port",
// "[v6]:port", or the socket path.
func (s serverSpec) String() string {
	if s.socket {
		return s.host
	}
	if strings.IndexByte(s.host, ':') >= 0 {
		return "[" + s.host + "]:" + strconv.Itoa(s.port)
	}
	return s.host + ":" + strconv.Itoa(s.port)
}

// parseServer reads "host", "host:port", "host:port:weight", "[v6]",
// "[v6]:port", "[v6]:port:weight" or "/path/to.sock", and any of the
// host forms after "udp:" (pylibmc's server specs; translate_server_spec).
func parseServer(s string) (serverSpec, error) {
	if rest, ok := strings.CutPrefix(s, "udp:"); ok {
		sp, err := parseServer(rest)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Server = s
			}
			return sp, err
		}
		if sp.socket || strings.HasPrefix(rest, "udp:") {
			return serverSpec{}, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: "new", Server: s,
				Message: "udp: takes a host and port, not a socket path or another prefix"}
		}
		sp.udp = true
		return sp, nil
	}
	bad := func(msg string) (serverSpec, error) {
		return serverSpec{}, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: "new", Server: s, Message: msg}
	}
	if s == "" {
		return bad("empty server address")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return bad("server address contains a space or control byte")
		}
	}
	if len(s) > 1000 {
		return bad("server address is too long")
	}
	if s[0] == '/' {
		return serverSpec{host: s, weight: 1, socket: true}, nil
	}
	sp := serverSpec{port: 11211, weight: 1}
	var rest string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return bad("unterminated or empty [IPv6] address")
		}
		sp.host, rest = s[1:end], s[end+1:]
		if rest != "" && rest[0] != ':' {
			return bad("expected :port after ]")
		}
		rest = strings.TrimPrefix(rest, ":")
	} else {
		parts := strings.SplitN(s, ":", 2)
		sp.host = parts[0]
		if len(parts) == 2 {
			rest = parts[1]
		}
		if sp.host == "" {
			return bad("empty host")
		}
	}
	if rest == "" {
		if strings.HasSuffix(s, ":") {
			return bad("empty port")
		}
		return sp, nil
	}
	fields := strings.Split(rest, ":")
	if len(fields) > 2 {
		return bad("too many ':' (write an IPv6 address as [addr]:port)")
	}
	port, err := strconv.Atoi(fields[0])
	if err != nil || port < 1 || port > 65535 {
		return bad(fmt.Sprintf("bad port %q", fields[0]))
	}
	sp.port = port
	if len(fields) == 2 {
		w, err := strconv.Atoi(fields[1])
		if err != nil || w < 1 {
			return bad(fmt.Sprintf("bad weight %q", fields[1]))
		}
		sp.weight = w
	}
	return sp, nil
}
