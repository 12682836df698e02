package libmemcached

import (
	"os/exec"
	"syscall"
)

// dieWithTests makes the kernel kill a test's memcached if the test binary
// dies without stopping it (a crash, a timeout, kill -9).
func dieWithTests(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
