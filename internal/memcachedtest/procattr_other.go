//go:build !linux

package memcachedtest

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal: Stop, or the test's cleanup, stops the server.
func dieWithParent(cmd *exec.Cmd) {}
