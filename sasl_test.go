package libmemcached

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSASLMemcached starts memcached -S with a sasldb holding user/pass.
func startSASLMemcached(t *testing.T, user, pass string) *memcachedServer {
	t.Helper()
	saslpasswd, err := exec.LookPath("saslpasswd2")
	require.NoError(t, err, "saslpasswd2 is not installed: run scripts/install-deps.sh (Debian: apt-get install sasl2-bin libsasl2-modules libsasl2-modules-db)")
	dir := t.TempDir()
	host, err := os.Hostname()
	require.NoError(t, err)
	cmd := exec.Command(saslpasswd, "-f", filepath.Join(dir, "sasldb2"), "-a", "memcached", "-u", host, "-c", "-p", user)
	cmd.Stdin = strings.NewReader(pass)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "saslpasswd2: %s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memcached.conf"),
		[]byte("mech_list: plain\nsasldb_path: "+filepath.Join(dir, "sasldb2")+"\n"), 0o644))
	s, err := memcachedtest.Start(context.Background(), memcachedtest.Config{
		Args: []string{"-S"},
		Env:  []string{"SASL_CONF_PATH=" + dir},
	})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

// A binary client without credentials talking to a SASL server gets auth
// errors from every operation. libmemcached asserts, aborting the whole
// process, when an incr or decr is answered with one; the binding checks
// the server with a get first, so this test process must survive.
func TestSASLWithoutCredentialsNeverAborts(t *testing.T) {
	s := startSASLMemcached(t, "gopher", "secret")

	good, err := New([]string{s.Addr}, WithSASL("gopher", "secret"))
	require.NoError(t, err)
	defer good.Close()
	require.NoError(t, good.Set(&Item{Key: "n", Value: []byte("5")}))
	n, err := good.Increment("n", 2)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), n)

	anon, err := New([]string{s.Addr}, WithBinaryProtocol())
	require.NoError(t, err)
	defer anon.Close()
	for _, op := range []func() error{
		func() error { _, err := anon.Increment("n", 1); return err },
		func() error { _, err := anon.Decrement("n", 1); return err },
		func() error { _, err := anon.Get("n"); return err },
		func() error { return anon.Set(&Item{Key: "n", Value: []byte("1")}) },
		func() error { _, err := anon.GetMulti([]string{"n", "m"}); return err },
	} {
		err := op()
		var e *Error
		require.True(t, errors.As(err, &e), "%v", err)
		assert.True(t, errors.Is(err, ErrAuthFailure) || errors.Is(err, ErrAuthProblem), "want an auth error, got %v", err)
	}
	// The authenticated client saw no change.
	it, err := good.Get("n")
	require.NoError(t, err)
	assert.Equal(t, "7", strings.TrimSpace(string(it.Value)))

	bad, err := New([]string{s.Addr}, WithSASL("gopher", "wrong"))
	require.NoError(t, err)
	defer bad.Close()
	_, err = bad.Increment("n", 1)
	require.Error(t, err)
	_, err = bad.Get("n")
	require.Error(t, err)
}

// Warm authenticates each handle it connects; without credentials, or with
// wrong ones, it returns an error (and the process lives on).
func TestSASLPoolWarm(t *testing.T) {
	s := startSASLMemcached(t, "gopher", "secret")
	ctx := context.Background()

	good, err := NewPool([]string{s.Addr}, 3, WithSASL("gopher", "secret"))
	require.NoError(t, err)
	defer good.Close()
	require.NoError(t, good.Warm(ctx))
	require.NoError(t, good.Set(&Item{Key: "warm", Value: []byte("ok")}))
	it, err := good.Get("warm")
	require.NoError(t, err)
	assert.Equal(t, "ok", string(it.Value))

	// Without credentials the connections open (memcached answers a
	// version request before authentication); the data calls then fail.
	anon, err := NewPool([]string{s.Addr}, 3, WithBinaryProtocol())
	require.NoError(t, err)
	defer anon.Close()
	require.NoError(t, anon.Warm(ctx))
	_, err = anon.Get("warm")
	assert.True(t, errors.Is(err, ErrAuthFailure) || errors.Is(err, ErrAuthProblem), "want an auth error, got %v", err)

	bad, err := NewPool([]string{s.Addr}, 3, WithSASL("gopher", "wrong"))
	require.NoError(t, err)
	defer bad.Close()
	err = bad.Warm(ctx)
	assert.ErrorIs(t, err, ErrAuthFailure, "wrong credentials fail Warm")
}
