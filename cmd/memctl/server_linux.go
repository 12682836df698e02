package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill the embedded memcached if memctl
// dies without stopping it (SIGKILL, a crash): PR_SET_PDEATHSIG. The
// signal follows the OS thread that started the child, which in memctl only
// ends with the process: nothing in it calls runtime.LockOSThread.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
