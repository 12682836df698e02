package memcachedtest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ClientThreads tells which of the server's worker threads serves each
// client connection, keyed by the client's port: the threads are numbered
// 0, 1, ... in no meaningful order, but two connections with the same
// number share one thread. It needs Linux's /proc of the server process:
// each memcached worker thread waits in its own epoll instance, whose
// fdinfo lists the sockets registered in it; "stats conns" maps a socket
// to its client's address. The connection ClientThreads itself opens and
// the listening socket are left out (the former counts in memcached's
// round robin of new connections, though).
func (s *Server) ClientThreads() (map[int]int, error) {
	if s.Port == 0 {
		return nil, fmt.Errorf("memcachedtest: ClientThreads needs a TCP server")
	}
	byFD, self, err := s.connAddrs()
	if err != nil {
		return nil, err
	}
	epolls, err := epollFDs(s.Pid())
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	thread := 0
	for _, ep := range epolls {
		fds, err := epollTargets(s.Pid(), ep)
		if err != nil {
			return nil, err
		}
		seen := false
		for _, fd := range fds {
			port, ok := byFD[fd]
			if !ok || port == self || port == s.Port {
				continue
			}
			out[port] = thread
			seen = true
		}
		if seen {
			thread++
		}
	}
	return out, nil
}

// connAddrs reads "stats conns": each client socket's fd and the client's
// port, and the port of the connection it asked on.
func (s *Server) connAddrs() (map[int]int, int, error) {
	c, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	self := c.LocalAddr().(*net.TCPAddr).Port
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("stats conns\r\n")); err != nil {
		return nil, 0, err
	}
	byFD := map[int]int{}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, 0, err
		}
		line = strings.TrimSpace(line)
		if line == "END" {
			return byFD, self, nil
		}
		// STAT <fd>:addr tcp:127.0.0.1:<port>
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasSuffix(f[1], ":addr") {
			continue
		}
		fd, err1 := strconv.Atoi(strings.TrimSuffix(f[1], ":addr"))
		i := strings.LastIndexByte(f[2], ':')
		port, err2 := strconv.Atoi(f[2][i+1:])
		if err1 == nil && err2 == nil && i >= 0 {
			byFD[fd] = port
		}
	}
}

// epollFDs lists the process's epoll descriptors, in order.
func epollFDs(pid int) ([]int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, fd)
		}
	}
	sort.Ints(out)
	return out, nil
}

// epollTargets lists the descriptors registered in one epoll instance.
func epollTargets(pid, ep int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, ep))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "tfd:" {
			if fd, err := strconv.Atoi(f[1]); err == nil {
				out = append(out, fd)
			}
		}
	}
	return out, nil
}
