//go:build libmemcached_leakcheck

package libmemcached

import (
	"fmt"
	"runtime"
	"strings"
)

// origin records where a Client or Pool was made: with the build tag
// libmemcached_leakcheck, a finalizer that finds one open prints this
// stack to leakOutput, as a leak detector.
type origin []uintptr

func here() origin {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(3, pcs)]
}

// report counts a Client or Pool that the garbage collector found open and
// says where it was made.
func (o origin) report(what string) {
	unclosed.Add(1)
	var b strings.Builder
	fmt.Fprintf(&b, "libmemcached: a %s was garbage collected without Close; it was made at:\n", what)
	frames := runtime.CallersFrames(o)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "\t%s\n\t\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	leakMu.Lock()
	defer leakMu.Unlock()
	fmt.Fprint(leakOutput, b.String())
}
