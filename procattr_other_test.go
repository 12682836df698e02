//go:build !linux

package libmemcached

import "os/exec"

// dieWithTests is a no-op where the kernel offers no parent-death signal.
func dieWithTests(cmd *exec.Cmd) {}
