//go:build !libmemcached_leakcheck

package libmemcached

// origin records where a Client or Pool was made; in this build, nothing
// (build with -tags libmemcached_leakcheck to have finalizers report
// where each unclosed one came from).
type origin struct{}

func here() origin { return origin{} }

// report counts a Client or Pool that the garbage collector found open.
func (origin) report(what string) { unclosed.Add(1) }
