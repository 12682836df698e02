package memcachedtest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the server when the thread that
// started it ends (PR_SET_PDEATHSIG): with the process, since Go ends
// threads only with it unless runtime.LockOSThread is in play.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
