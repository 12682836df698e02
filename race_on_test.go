//go:build race

package libmemcached

// raceEnabled: the race detector drops a quarter of sync.Pool's Puts on
// purpose, so allocation counts of pooled paths are not exact under it.
const raceEnabled = true
