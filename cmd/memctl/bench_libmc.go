//go:build !nolibmc

package main

// github.com/douban/libmc: cgo over its own C++ core, so building it needs
// a C++ compiler (g++). Without one, build memctl with -tags nolibmc (the
// Makefile does): bench_libmc_absent.go then reports libmc as absent.

import (
	"context"
	"errors"
	"fmt"

	golibmc "github.com/douban/libmc/src"
)

// buildTags are the tags this memctl was built with (for the tests that
// build it again).
const buildTags = ""

var libmcSpec = &clientSpec{
	name: "libmc",
	peer: true,
	desc: "github.com/douban/libmc/src v1.4.15 (cgo over its C++ core): SimpleNew; SetConnMaxOpen(pool size) in the concurrent rows; New(noreply=true) for set-noreply",
	open: openLibmc,
}

type libmc struct {
	c   *golibmc.Client
	ctx context.Context
}

func (a libmc) Get(key string) ([]byte, error) {
	it, err := a.c.Get(a.ctx, key)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, golibmc.ErrCacheMiss
	}
	return it.Value, nil
}

func (a libmc) Set(key string, value []byte) error {
	return a.c.Set(a.ctx, &golibmc.Item{Key: key, Value: value, Expiration: benchExpiration})
}

func (a libmc) GetMulti(keys []string, each func(string, []byte)) error {
	items, err := a.c.GetMulti(a.ctx, keys)
	for k, it := range items {
		each(k, it.Value)
	}
	if errors.Is(err, golibmc.ErrCacheMiss) {
		return nil // some keys are missing: the runner counts them
	}
	return err
}

func openLibmc(servers []string, cfg *benchConfig) (*clientForms, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("no servers")
	}
	ctx := context.Background()
	seq := golibmc.SimpleNew(servers)
	conc := golibmc.SimpleNew(servers)
	conc.SetConnMaxOpen(cfg.poolSize)
	nr := golibmc.New(servers, true, "", golibmc.HashCRC32, false, false)
	return &clientForms{
		seq:     libmc{seq, ctx},
		conc:    libmc{conc, ctx},
		noreply: libmc{nr, ctx},
		close:   func() { seq.Quit(); conc.Quit(); nr.Quit() },
	}, nil
}
