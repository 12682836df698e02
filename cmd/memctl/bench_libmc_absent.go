//go:build nolibmc

package main

// buildTags are the tags this memctl was built with (for the tests that
// build it again).
const buildTags = "nolibmc"

var libmcSpec = &clientSpec{
	name:   "libmc",
	desc:   "github.com/douban/libmc/src v1.4.15 (cgo over its C++ core)",
	absent: "this memctl was built with -tags nolibmc (no C++ compiler: install g++ and rebuild to include it)",
}
