//go:build libmemcached_leakcheck

package libmemcached

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// syncBuffer is a bytes.Buffer safe for the finalizer goroutine to write
// while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Built with -tags libmemcached_leakcheck (make test runs it so), a
// finalizer that finds a Client or Pool open reports it with the stack
// that made it; one that was closed is never reported.
func TestLeakReport(t *testing.T) {
	s := sharedServer(t)
	var out syncBuffer
	leakMu.Lock()
	saved := leakOutput
	leakOutput = &out
	leakMu.Unlock()
	t.Cleanup(func() {
		leakMu.Lock()
		leakOutput = saved
		leakMu.Unlock()
	})

	closeAndDrop(t, s.Addr)
	dropClient(t, s.Addr)
	dropPool(t, s.Addr)
	reported := collectUntil(func() bool {
		r := out.String()
		return strings.Contains(r, ".dropClient\n") && strings.Contains(r, ".dropPool\n")
	})
	// A few more collections give a wrongly armed finalizer of the closed
	// ones time to run.
	for i := 0; i < 20; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	report := out.String()
	t.Logf("leak report:\n%s", report)
	assert.True(t, reported, "both dropped objects are reported")
	assert.Contains(t, report, "libmemcached: a Client was garbage collected without Close; it was made at:\n")
	assert.Contains(t, report, "libmemcached: a Pool was garbage collected without Close; it was made at:\n")
	assert.Contains(t, report, "finalize_test.go:", "the stack names the line that made it")
	assert.NotContains(t, report, "closeAndDrop", "a closed Client or Pool is never reported")
}
