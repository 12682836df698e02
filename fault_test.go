package libmemcached

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHungServerNeverAnswersForAnotherKey pauses the server (SIGSTOP) so
// that requests time out, resumes it so the late replies arrive, and checks
// that every value read afterwards belongs to its own key: the handle must
// be reset after a timeout, or the next request reads the previous reply.
func TestHungServerNeverAnswersForAnotherKey(t *testing.T) {
	const pollMS = 200
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			s := newServer(t)
			opts := append([]Option{WithBehaviors(map[string]any{"_poll_timeout": pollMS, "connect_timeout": pollMS})}, p.opts...)
			c, err := New([]string{s.Addr}, opts...)
			require.NoError(t, err)
			defer c.Close()
			const n = 20
			for i := 0; i < n; i++ {
				require.NoError(t, c.Set(&Item{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i))}))
			}
			for round := 0; round < 3; round++ {
				require.NoError(t, s.Signal(syscall.SIGSTOP))
				time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
				start := time.Now()
				_, err := c.Get(fmt.Sprint("k", round))
				elapsed := time.Since(start)
				var e *Error
				require.True(t, errors.As(err, &e), "get on a paused server: %v", err)
				assert.True(t, e.Timeout(), "Timeout() on %v", err)
				assert.True(t, e.Temporary(), "Temporary() on %v", err)
				assert.Less(t, elapsed, pollMS*time.Millisecond+2*time.Second, "a paused server must not hang the call")
				_, err = c.GetMulti([]string{"k1", "k2", "k3"})
				require.Error(t, err)
				err = c.Set(&Item{Key: fmt.Sprint("k", round), Value: []byte(fmt.Sprint("v", round))})
				require.Error(t, err)
				require.NoError(t, s.Signal(syscall.SIGCONT))
				time.Sleep(20 * time.Millisecond) // let the late replies arrive
				for i := 0; i < n; i++ {
					key := fmt.Sprint("k", i)
					it, err := c.Get(key)
					require.NoError(t, err, "get %s after resume", key)
					require.Equal(t, "v"+key[1:], string(it.Value), "value read for %s", key)
				}
				m, err := c.GetMulti([]string{"k4", "k5", "k6"})
				require.NoError(t, err)
				for k, it := range m {
					require.Equal(t, "v"+k[1:], string(it.Value))
				}
			}
		})
	}
}
