//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing where there is no PR_SET_PDEATHSIG: the
// embedded memcached is still stopped on every exit path memctl controls.
func setParentDeathSignal(cmd *exec.Cmd) {}
