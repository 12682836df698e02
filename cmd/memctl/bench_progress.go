package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ---------------------------------------------------------------------------
// Peak OS threads

// threadsMethod says how the threads column is measured.
const threadsMethod = "the Threads: line of /proc/self/status, the kernel's count of the process's threads (Go's and C's), sampled every 2 ms and at both ends"

// samplerInterval is how often the thread count is read during a window.
const samplerInterval = 2 * time.Millisecond

// inCMetric counts goroutines in cgo calls and system calls (Go 1.26+).
const inCMetric = "/sched/goroutines/not-in-go:goroutines"

// threadSampler records the peak thread count of the process during a
// window, and the peak number of goroutines outside Go (in cgo or system
// calls). One goroutine samples for the whole run; it does not allocate,
// so it does not disturb the allocation counts.
type threadSampler struct {
	f       *os.File // /proc/self/status; nil where there is none
	buf     []byte
	metric  []metrics.Sample
	active  atomic.Bool
	wake    chan struct{}
	done    chan struct{}
	quit    chan struct{}
	threads atomic.Int64
	inC     atomic.Int64
	inC0    int64 // goroutines outside Go when the window started
}

func newThreadSampler() *threadSampler {
	s := &threadSampler{
		buf:    make([]byte, 8192),
		metric: []metrics.Sample{{Name: inCMetric}},
		wake:   make(chan struct{}),
		done:   make(chan struct{}),
		quit:   make(chan struct{}),
	}
	if f, err := os.Open("/proc/self/status"); err == nil {
		s.f = f
	}
	go s.loop()
	return s
}

func (s *threadSampler) loop() {
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			return
		}
		for {
			s.sample()
			if !s.active.Load() {
				break
			}
			time.Sleep(samplerInterval)
		}
		s.done <- struct{}{}
	}
}

// osThreads returns the process's thread count, or -1.
func (s *threadSampler) osThreads() int64 {
	if s.f == nil {
		return -1
	}
	n, err := s.f.ReadAt(s.buf, 0)
	if n <= 0 && err != nil {
		return -1
	}
	b := s.buf[:n]
	i := bytes.Index(b, []byte("\nThreads:"))
	if i < 0 {
		return -1
	}
	b = b[i+len("\nThreads:"):]
	var v int64
	seen := false
	for _, c := range b {
		switch {
		case c == ' ' || c == '\t':
			if seen {
				return v
			}
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			seen = true
		default:
			if seen {
				return v
			}
			return -1
		}
	}
	return -1
}

func (s *threadSampler) sample() {
	if t := s.osThreads(); t > s.threads.Load() {
		s.threads.Store(t)
	}
	metrics.Read(s.metric)
	if s.metric[0].Value.Kind() == metrics.KindUint64 {
		if v := int64(s.metric[0].Value.Uint64()); v > s.inC.Load() {
			s.inC.Store(v)
		}
	}
}

// start begins a window's sampling. Goroutines already outside Go then
// (the one waiting for the embedded memcached to exit, ...) are not the
// window's, and are left out of its count.
func (s *threadSampler) start() {
	s.threads.Store(-1)
	s.inC.Store(-1)
	s.inC0 = 0
	metrics.Read(s.metric)
	if s.metric[0].Value.Kind() == metrics.KindUint64 {
		s.inC0 = int64(s.metric[0].Value.Uint64())
	}
	s.active.Store(true)
	s.wake <- struct{}{}
}

// stop ends the window's sampling and returns the peaks (-1: unknown).
func (s *threadSampler) stop() (threads, inC int) {
	s.active.Store(false)
	<-s.done
	s.sample()
	n := s.inC.Load()
	if n >= 0 {
		n = max(n-s.inC0, 0)
	}
	return int(s.threads.Load()), int(n)
}

func (s *threadSampler) close() {
	if s == nil {
		return
	}
	close(s.quit)
	if s.f != nil {
		s.f.Close()
	}
}

// ---------------------------------------------------------------------------
// Progress on stderr

// progress draws a bar on a terminal (redrawn between windows, so that it
// never runs during one) and prints one line per scenario elsewhere.
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	nDone   int
	perStep time.Duration
	start   time.Time
	width   int
	drawn   bool
}

func newProgress(w io.Writer, total int, perStep time.Duration) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, perStep: perStep, start: time.Now(), width: 28}
}

// estimate is the expected length of the whole run.
func (p *progress) estimate() time.Duration { return time.Duration(p.total) * p.perStep }

func (p *progress) scenario(i, n int, name string) {
	if !p.tty {
		fmt.Fprintf(p.w, "memctl bench: [%d/%d] %s (%s elapsed)\n", i, n, name, time.Since(p.start).Round(time.Second))
	}
}

// step shows the window about to run (finished false) or just finished.
func (p *progress) step(scn, client string, round, rounds int, finished bool) {
	if finished {
		p.nDone++
	}
	if !p.tty {
		return
	}
	filled := 0
	if p.total > 0 {
		filled = p.nDone * p.width / p.total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", p.width-filled)
	if filled < p.width && filled > 0 {
		bar = bar[:filled-1] + ">" + bar[filled:]
	}
	what := "warm-up"
	if round > 0 {
		what = fmt.Sprintf("round %d/%d", round, rounds)
	}
	left := time.Duration(p.total-p.nDone) * p.perStep
	fmt.Fprintf(p.w, "\r[%s] %d/%d  %s  %s  %s  %s elapsed, ~%s left\x1b[K",
		bar, p.nDone, p.total, scn, client, what,
		time.Since(p.start).Round(time.Second), left.Round(time.Second))
	p.drawn = true
}

func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
