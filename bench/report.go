package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// obj is a JSON object that keeps its keys in the order they were added, so
// that every line starts with "case" and "impl".
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(p.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o obj) get(k string) (any, bool) {
	for _, p := range o {
		if p.k == k {
			return p.v, true
		}
	}
	return nil, false
}

var outMu sync.Mutex

// emit prints o as one JSON line on standard output.
func emit(o obj) {
	b, err := json.Marshal(o)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"case":"error","error":%q}`, err.Error()))
	}
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

// logf prints progress on standard error, which stays free of JSON.
func logf(format string, args ...any) {
	outMu.Lock()
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	outMu.Unlock()
}

// round keeps d decimals.
func round(x float64, d int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// threadsOf reads the Threads: line of a /proc/<pid>/status file.
func threadsOf(statusPath string) (int, error) {
	b, err := os.ReadFile(statusPath)
	if err != nil {
		return 0, err
	}
	i := bytes.Index(b, []byte("\nThreads:"))
	if i < 0 {
		return 0, fmt.Errorf("%s: no Threads line", statusPath)
	}
	line := b[i+len("\nThreads:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return strconv.Atoi(strings.TrimSpace(string(line)))
}

// A sampler polls the thread count of a process every few milliseconds and
// keeps the peak.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	peak int
}

const sampleEvery = 2 * time.Millisecond

func startSampler(statusPath string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			if n, err := threadsOf(statusPath); err == nil && n > s.peak {
				s.peak = n
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns the peak it saw.
func (s *sampler) finish() int {
	close(s.stop)
	<-s.done
	return s.peak
}
