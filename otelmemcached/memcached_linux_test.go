package otelmemcached_test

import (
	"os/exec"
	"syscall"
)

// killWithTest has the kernel kill the server if the test binary dies
// before it can (PR_SET_PDEATHSIG).
func killWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
