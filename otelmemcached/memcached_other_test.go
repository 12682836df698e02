//go:build !linux

package otelmemcached_test

import "os/exec"

// killWithTest does nothing without a parent-death signal: TestMain and
// the tests' cleanups stop their servers.
func killWithTest(cmd *exec.Cmd) {}
