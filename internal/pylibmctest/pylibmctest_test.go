package pylibmctest

import (
	"slices"
	"strings"
	"testing"
)

func TestPythonFromEnvironment(t *testing.T) {
	t.Setenv("LIBMEMCACHED_TEST_PYTHON", "")
	if got := Python(); got != "/usr/bin/python3" {
		t.Errorf("Python() = %q without LIBMEMCACHED_TEST_PYTHON", got)
	}
	t.Setenv("LIBMEMCACHED_TEST_PYTHON", "/opt/py/bin/python3")
	if got := Python(); got != "/opt/py/bin/python3" {
		t.Errorf("Python() = %q with LIBMEMCACHED_TEST_PYTHON", got)
	}
	if got := Command("-V").Path; got != "/opt/py/bin/python3" {
		t.Errorf("Command runs %q", got)
	}
}

// The test binary's LD_LIBRARY_PATH never reaches pylibmc;
// LIBMEMCACHED_PYLIBMC_LIBRARY_PATH replaces it.
func TestCommandLibraryPath(t *testing.T) {
	t.Setenv("LD_LIBRARY_PATH", "/other/libmemcached")
	t.Setenv("LIBMEMCACHED_PYLIBMC_LIBRARY_PATH", "")
	env := Command("-V").Env
	for _, kv := range env {
		if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			t.Errorf("passed on %s", kv)
		}
	}
	if !slices.Contains(env, "LIBMEMCACHED_PYLIBMC_LIBRARY_PATH=") {
		t.Error("the rest of the environment is not passed on")
	}
	t.Setenv("LIBMEMCACHED_PYLIBMC_LIBRARY_PATH", "/compat/1.0.18")
	var paths []string
	for _, kv := range Command("-V").Env {
		if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			paths = append(paths, kv)
		}
	}
	if !slices.Equal(paths, []string{"LD_LIBRARY_PATH=/compat/1.0.18"}) {
		t.Errorf("LD_LIBRARY_PATH entries %q", paths)
	}
}

// Run passes JSON both ways, through the Python that has pylibmc.
func TestRun(t *testing.T) {
	var out struct {
		Echo    map[string]int `json:"echo"`
		Version string         `json:"version"`
	}
	Run(t, `
import json, sys, pylibmc
json.dump({"echo": json.load(sys.stdin), "version": pylibmc.__version__}, sys.stdout)
`, map[string]int{"a": 1}, &out)
	if out.Echo["a"] != 1 || out.Version == "" {
		t.Errorf("got %+v", out)
	}
	Run(t, "pass", nil, nil)
}
