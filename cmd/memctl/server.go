package main

// The embedded server: a memcached that memctl starts for itself (for
// "memctl demo" and "memctl bench") when no server is given. It
// listens only on 127.0.0.1, on a free port, with UDP off, and is stopped
// when the command ends: normally, on an error, on SIGINT/SIGTERM, and, on
// Linux, even when memctl itself is killed (internal/memcachedtest sets
// PR_SET_PDEATHSIG).

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
)

// installHint is the error text when no memcached binary can be found.
const installHint = memcachedtest.InstallHint

// errInterrupted is returned by withEmbeddedServer when its context was
// cancelled (memctl received SIGINT or SIGTERM).
var errInterrupted = errors.New("interrupted")

// embeddedServer is a memcached process started by memctl (the launcher the
// tests use too: internal/memcachedtest).
type embeddedServer = memcachedtest.Server

// startEmbedded starts memcached on a free 127.0.0.1 port and waits until
// it accepts connections. extra are more memcached arguments ("-m", "256",
// ...).
func startEmbedded(ctx context.Context, extra ...string) (*embeddedServer, error) {
	return memcachedtest.Start(ctx, memcachedtest.Config{Args: extra})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) { return memcachedtest.FreePort("127.0.0.1") }

// withEmbeddedServer starts a memcached, runs fn with it and stops the
// server when fn returns. If ctx is cancelled first (memctl received SIGINT
// or SIGTERM: see signalContext), the server is stopped at once, so that
// fn's calls fail fast instead of finishing the work, and once fn has
// returned withEmbeddedServer returns errInterrupted. extra are more
// memcached arguments, as for startEmbedded.
func withEmbeddedServer(ctx context.Context, fn func(ctx context.Context, s *embeddedServer) error, extra ...string) error {
	return withEmbeddedServers(ctx, 1, func(ctx context.Context, s []*embeddedServer) error { return fn(ctx, s[0]) }, extra...)
}

// withEmbeddedServers is withEmbeddedServer for n servers, each on a free
// 127.0.0.1 port with the extra arguments: fn runs once all have started,
// and all are stopped when it returns, or at once if ctx is cancelled.
func withEmbeddedServers(ctx context.Context, n int, fn func(ctx context.Context, s []*embeddedServer) error, extra ...string) error {
	var started []*embeddedServer
	stopAll := func() {
		for _, s := range started {
			s.Stop()
		}
	}
	defer stopAll()
	for len(started) < n {
		s, err := startEmbedded(ctx, extra...)
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return err
		}
		started = append(started, s)
	}
	fnDone := make(chan struct{})
	defer close(fnDone)
	go func() {
		select {
		case <-ctx.Done():
			stopAll()
		case <-fnDone:
		}
	}()
	err := fn(ctx, started)
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// signalContext returns a context cancelled when memctl receives SIGINT
// (Ctrl-C) or SIGTERM; stop restores the default handling.
func signalContext() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
