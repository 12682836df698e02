// Package pylibmctest runs Python with the real pylibmc for the tests of
// this repository that compare with it: the root package's behavior oracle
// and server-mapping parity, and package pylibmc's value interop. It runs
// the system Python (/usr/bin/python3, not the python3 on PATH, which may
// lack pylibmc), or the interpreter LIBMEMCACHED_TEST_PYTHON names (macOS:
// one with pylibmc installed, e.g. after `python3 -m pip install pylibmc`).
//
// A missing Python or pylibmc fails the test with Hint; it never skips.
package pylibmctest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Hint says how to get pylibmc, for a failure to run it.
const Hint = "pylibmc is needed: run scripts/install-deps.sh (Debian, Ubuntu: apt-get install python3-pylibmc); elsewhere install it (python3 -m pip install pylibmc) and set LIBMEMCACHED_TEST_PYTHON to that python"

// Python returns the interpreter that has pylibmc: $LIBMEMCACHED_TEST_PYTHON
// when set, else /usr/bin/python3.
func Python() string {
	if p := os.Getenv("LIBMEMCACHED_TEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// Command runs Python with args. Debian's pylibmc loads the libmemcached
// it was built for, the system's: a LD_LIBRARY_PATH that points the test
// binary at another version (make compat) is not passed on to it.
//
// LIBMEMCACHED_PYLIBMC_LIBRARY_PATH, when set, is pylibmc's LD_LIBRARY_PATH
// instead: make compat runs the pylibmc tests once more with pylibmc on
// libmemcached 1.0.18, as Ubuntu 22.04's pylibmc is.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command(Python(), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if dir := os.Getenv("LIBMEMCACHED_PYLIBMC_LIBRARY_PATH"); dir != "" {
		cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+dir)
	}
	return cmd
}

// Run runs script (Python source) through Command with in as JSON on its
// stdin, and decodes its JSON stdout into out when out is not nil. A
// failure of Python, of the script or of the decoding fails t, with
// Python's stderr and Hint.
func Run(t testing.TB, script string, in, out any) {
	t.Helper()
	req, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encoding the input of a Python script: %v", err)
	}
	cmd := Command("-c", script)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python (%s) failed: %v\n%s\n%s", Python(), err, stderr.String(), Hint)
	}
	if out != nil {
		if err := json.Unmarshal(stdout, out); err != nil {
			t.Fatalf("decoding python's output: %v\noutput: %s", err, stdout)
		}
	}
}
