//go:build !race

package libmemcached

// raceEnabled: see race_on_test.go.
const raceEnabled = false
