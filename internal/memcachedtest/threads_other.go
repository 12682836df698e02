//go:build !linux

package memcachedtest

import "errors"

// ClientThreads tells which of the server's worker threads serves each
// client connection; it needs Linux's /proc (see threads_linux.go).
func (s *Server) ClientThreads() (map[int]int, error) {
	return nil, errors.New("memcachedtest: ClientThreads needs Linux's /proc")
}
