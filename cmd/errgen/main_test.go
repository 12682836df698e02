package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoName(t *testing.T) {
	cases := map[string]string{
		"MEMCACHED_SUCCESS":                          "Success",
		"MEMCACHED_FAILURE":                          "Failure",
		"MEMCACHED_HOST_LOOKUP_FAILURE":              "HostLookupFailure",
		"MEMCACHED_DATA_DOES_NOT_EXIST":              "DataDoesNotExist",
		"MEMCACHED_NOTFOUND":                         "NotFound",
		"MEMCACHED_NOTSTORED":                        "NotStored",
		"MEMCACHED_FETCH_NOTFINISHED":                "FetchNotFinished",
		"MEMCACHED_NOT_SUPPORTED":                    "NotSupported",
		"MEMCACHED_ERRNO":                            "Errno",
		"MEMCACHED_ERROR":                            "Error",
		"MEMCACHED_E2BIG":                            "E2BIG",
		"MEMCACHED_SERVER_TEMPORARILY_DISABLED":      "ServerTemporarilyDisabled",
		"MEMCACHED_FAIL_UNIX_SOCKET":                 "FailUnixSocket",
		"MEMCACHED_IN_PROGRESS":                      "InProgress",
		"MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE": "ConnectionSocketCreateFailure",
		"MEMCACHED_NOTHING":                          "Nothing",
		"MEMCACHED_SASL_UDP":                         "SASLUDP",
	}
	for c, want := range cases {
		got, err := goName(c)
		if assert.NoError(t, err, c) {
			assert.Equal(t, want, got, c)
		}
	}
	for _, bad := range []string{"MEMCACHED_", "SUCCESS", "MEMCACHED_A__B", "MEMCACHED__A", "MEMCACHED_2BIG", "MEMCACHED_a"} {
		_, err := goName(bad)
		assert.Error(t, err, bad)
	}
}

func TestGenParseEnumInstalledHeader(t *testing.T) {
	src, err := os.ReadFile(findHeader())
	require.NoError(t, err)
	entries, err := parseEnum(string(src))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	assert.Equal(t, entry{Name: successName}, entries[0])
	assert.Contains(t, entries, entry{Name: "MEMCACHED_NOTFOUND"})
	assert.Contains(t, entries, entry{Name: maximumName})
	assert.Contains(t, entries, entry{Name: "MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE", Alias: "MEMCACHED_ERROR"})

	codes, err := buildCodes(entries, maxReturn(), strerror)
	require.NoError(t, err)
	byName := map[string]code{}
	for _, c := range codes {
		byName[c.CName] = c
	}
	assert.Equal(t, code{CName: "MEMCACHED_NOTFOUND", GoName: "NotFound", Description: "NOT FOUND"}, byName["MEMCACHED_NOTFOUND"])
	assert.Equal(t, "Error", byName["MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE"].AliasOf)
}

func TestGenParseEnum(t *testing.T) {
	src := `
/* header */
#pragma once
enum other { MEMCACHED_NOPE };
enum memcached_return_t {
  MEMCACHED_SUCCESS,   // first
  MEMCACHED_NOTFOUND, /* a
  multi-line comment, with commas, and MEMCACHED_BOGUS = 3 */
  MEMCACHED_MAXIMUM_RETURN,
  MEMCACHED_MISSING =   MEMCACHED_NOTFOUND
};`
	entries, err := parseEnum(src)
	require.NoError(t, err)
	assert.Equal(t, []entry{
		{Name: "MEMCACHED_SUCCESS"},
		{Name: "MEMCACHED_NOTFOUND"},
		{Name: "MEMCACHED_MAXIMUM_RETURN"},
		{Name: "MEMCACHED_MISSING", Alias: "MEMCACHED_NOTFOUND"},
	}, entries)

	bad := map[string]string{
		"no enum":          "enum memcached_return_t_x { MEMCACHED_SUCCESS };",
		"unterminated":     "enum memcached_return_t { MEMCACHED_SUCCESS, ",
		"twice":            "enum memcached_return_t { MEMCACHED_SUCCESS }; enum memcached_return_t { MEMCACHED_SUCCESS };",
		"number":           "enum memcached_return_t { MEMCACHED_SUCCESS = 0, MEMCACHED_MAXIMUM_RETURN };",
		"expression":       "enum memcached_return_t { MEMCACHED_SUCCESS, MEMCACHED_X = MEMCACHED_SUCCESS + 1 };",
		"empty entry":      "enum memcached_return_t { MEMCACHED_SUCCESS,, MEMCACHED_MAXIMUM_RETURN };",
		"empty enum":       "enum memcached_return_t { };",
		"foreign name":     "enum memcached_return_t { MEMCACHED_SUCCESS, OTHER_THING };",
		"lower case":       "enum memcached_return_t { MEMCACHED_SUCCESS, MEMCACHED_oops };",
		"duplicate":        "enum memcached_return_t { MEMCACHED_SUCCESS, MEMCACHED_SUCCESS };",
		"open comment":     "enum memcached_return_t { MEMCACHED_SUCCESS }; /* never closed",
		"preprocessor":     "enum memcached_return_t { MEMCACHED_SUCCESS,\n#ifdef X\n MEMCACHED_X,\n#endif\n};",
		"two on one entry": "enum memcached_return_t { MEMCACHED_SUCCESS MEMCACHED_FAILURE };",
	}
	for name, src := range bad {
		_, err := parseEnum(src)
		assert.Error(t, err, name)
	}
}

func TestGenBuildCodes(t *testing.T) {
	describe := func(i int) string { return "D" + string(rune('0'+i)) }
	good := []entry{
		{Name: "MEMCACHED_SUCCESS"},
		{Name: "MEMCACHED_NOTFOUND"},
		{Name: "MEMCACHED_MAXIMUM_RETURN"},
		{Name: "MEMCACHED_MISSING", Alias: "MEMCACHED_NOTFOUND"},
	}
	codes, err := buildCodes(good, 2, describe)
	require.NoError(t, err)
	assert.Equal(t, []code{
		{CName: "MEMCACHED_SUCCESS", GoName: "Success", Description: "D0"},
		{CName: "MEMCACHED_NOTFOUND", GoName: "NotFound", Description: "D1"},
		{CName: "MEMCACHED_MISSING", GoName: "Missing", AliasOf: "NotFound"},
	}, codes)

	_, err = buildCodes(good, 3, describe)
	assert.ErrorContains(t, err, "MEMCACHED_MAXIMUM_RETURN = 3")

	bad := map[string][]entry{
		"no maximum":         {{Name: "MEMCACHED_SUCCESS"}},
		"success not first":  {{Name: "MEMCACHED_FAILURE"}, {Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}},
		"alias before max":   {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_OK", Alias: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}},
		"code after max":     {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}, {Name: "MEMCACHED_LATE"}},
		"alias of unknown":   {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}, {Name: "MEMCACHED_X", Alias: "MEMCACHED_Y"}},
		"alias of maximum":   {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}, {Name: "MEMCACHED_X", Alias: "MEMCACHED_MAXIMUM_RETURN"}},
		"alias of alias":     {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}, {Name: "MEMCACHED_X", Alias: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_Z", Alias: "MEMCACHED_X"}},
		"maximum is alias":   {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_MAXIMUM_RETURN", Alias: "MEMCACHED_SUCCESS"}},
		"same Go name":       {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_NOTFOUND"}, {Name: "MEMCACHED_NOT_FOUND"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}},
		"bad name for Go":    {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_9LIVES"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}},
		"count below header": {{Name: "MEMCACHED_SUCCESS"}, {Name: "MEMCACHED_FAILURE"}, {Name: "MEMCACHED_MAXIMUM_RETURN"}},
	}
	for name, entries := range bad {
		_, err := buildCodes(entries, 1, describe)
		assert.Error(t, err, name)
	}
	_, err = buildCodes(good, 2, func(int) string { return "" })
	assert.ErrorContains(t, err, "no text")
}

func TestGenRenderDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.go"), filepath.Join(dir, "sub_b.go")
	require.NoError(t, run([]string{"-o", a}))
	require.NoError(t, run([]string{"-header", findHeader(), "-o", b}))
	da, err := os.ReadFile(a)
	require.NoError(t, err)
	db, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(da, db), "two runs differ")
	assert.NotContains(t, string(da), dir)
	assert.NotContains(t, string(da), "/usr/")
	assert.True(t, strings.HasPrefix(string(da), generatedHeader+"\n"))
	assert.Contains(t, string(da), "\tErrNotFound error = codeError(ReturnNotFound)\n")
	assert.Contains(t, string(da), "\tErrConnectionSocketCreateFailure = ErrError\n")
	assert.NotContains(t, string(da), "ErrSuccess")
	assert.NotContains(t, string(da), "ReturnMaximumReturn")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "temporary files left behind")
}

func TestGenRunFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.go")
	require.NoError(t, os.WriteFile(out, []byte("keep"), 0o644))

	err := run([]string{"-header", filepath.Join(dir, "missing.h"), "-o", out})
	assert.ErrorContains(t, err, "reading header")

	h := filepath.Join(dir, "return.h")
	require.NoError(t, os.WriteFile(h, []byte("enum memcached_return_t { MEMCACHED_SUCCESS, MEMCACHED_MAXIMUM_RETURN };"), 0o644))
	err = run([]string{"-header", h, "-o", out})
	assert.ErrorContains(t, err, "linked libmemcached has MEMCACHED_MAXIMUM_RETURN")

	assert.Error(t, run(nil), "missing -o")
	assert.Error(t, run([]string{"-o", out, "extra"}))

	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(got), "a failed run must not touch the output")
}
