package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopam/pam"
)

// concurrentImpls are the implementations of faildelay and flood, each run
// in its own child process.
var concurrentImpls = []string{"c", "gopam", "gopam_run", "msteinert"}

// cThreadStackKiB is the stack of each C thread in faildelay and flood.
const cThreadStackKiB = 256

// concurrentCase runs n concurrent failing logins behind a delay of delayUS
// once per implementation, each in a child process, and returns the lines.
func concurrentCase(s *stacks, name string, n, delayUS int, timeout time.Duration) map[string]obj {
	out := map[string]obj{}
	impls := slices.DeleteFunc(slices.Clone(concurrentImpls), func(im string) bool {
		return len(onlyImpls) > 0 && !slices.Contains(onlyImpls, im)
	})
	for _, im := range impls {
		o := spawn(s, name, im, n, delayUS, timeout)
		emit(o)
		out[im] = o
	}
	ratio := obj{{"case", name}}
	get := func(im, k string) float64 {
		v, _ := out[im].get(k)
		f, _ := toFloat(v)
		return f
	}
	for _, im := range impls {
		if im != "c" && get(im, "wall_s") > 0 && get("c", "wall_s") > 0 {
			ratio = append(ratio, kv{"ratio_wall_" + im + "_c", round(get(im, "wall_s")/get("c", "wall_s"), 3)})
		}
	}
	for _, im := range impls {
		ratio = append(ratio, kv{"peak_threads_" + im, int(get(im, "peak_threads"))})
	}
	for _, im := range impls {
		s, _ := out[im].get("survived")
		ratio = append(ratio, kv{"survived_" + im, s})
	}
	emit(ratio)
	return out
}

// spawn re-executes the bench binary to run one implementation of a case,
// sampling the child's thread count from outside as well, so that a child
// that crashes is still measured.
func spawn(s *stacks, name, im string, n, delayUS int, timeout time.Duration) obj {
	base := obj{{"case", name}, {"impl", im}, {"n", n}, {"delay_s", float64(delayUS) / 1e6}}
	exe, err := os.Executable()
	if err != nil {
		return append(base, kv{"survived", false}, kv{"error", err.Error()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-child", name, "-child-impl", im,
		"-child-n", strconv.Itoa(n), "-child-delay-us", strconv.Itoa(delayUS), "-child-confdir", s.dir)
	var stdout bytes.Buffer
	stderr := &headWriter{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return append(base, kv{"survived", false}, kv{"error", err.Error()})
	}
	smp := startSampler(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	werr := cmd.Wait()
	outside := smp.finish()
	elapsed := time.Since(t0).Seconds()

	var line obj
	for _, l := range strings.Split(stdout.String(), "\n") {
		if o, err := decodeObj([]byte(l)); err == nil && len(o) > 0 {
			line = o
		}
	}
	res := obj{{"case", name}, {"impl", im}}
	if werr == nil && line != nil {
		survived := true
		for _, p := range line {
			switch p.k {
			case "case", "impl":
				continue
			case "peak_threads":
				self, _ := toFloat(p.v)
				res = append(res, kv{"peak_threads", max(int(self), outside)}, kv{"peak_threads_self", int(self)},
					kv{"peak_threads_outside", outside})
				continue
			case "bad", "not_started":
				if f, _ := toFloat(p.v); f != 0 {
					survived = false
				}
			}
			res = append(res, p)
		}
		return append(res, kv{"survived", survived}, kv{"process_s", round(elapsed, 3)})
	}
	// The child died (or hung): report what is known.
	reason := "no result line"
	if werr != nil {
		reason = werr.Error()
	}
	if ctx.Err() != nil {
		reason = fmt.Sprintf("killed after %v", timeout)
	}
	res = append(res, base[2:]...)
	return append(res, kv{"survived", false}, kv{"peak_threads", outside}, kv{"peak_threads_outside", outside},
		kv{"process_s", round(elapsed, 3)}, kv{"exit", reason}, kv{"stderr", stderr.firstLines(3)})
}

// headWriter keeps the first max bytes written to it and drops the rest.
type headWriter struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *headWriter) firstLines(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keep []string
	for _, l := range strings.Split(w.b.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
		if len(keep) == n {
			break
		}
	}
	return strings.Join(keep, " | ")
}

// decodeObj reads a flat JSON object, keeping its keys' order.
func decodeObj(b []byte) (obj, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var o obj
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, err
		}
		o = append(o, kv{k, x})
	}
	return o, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// runChild is the child side: it runs one implementation of one case on the
// parent's stacks (confdir) and prints one JSON line. The exit status is 0
// when the line was printed.
func runChild(name, im string, n, delayUS int, confdir string) int {
	s := &stacks{dir: confdir}
	var o obj
	switch name {
	case "faildelay", "flood":
		o = childConcurrent(s, name, im, n, delayUS)
	case "leak":
		o = childLeak(s, im, n)
	default:
		o = obj{{"case", name}, {"impl", im}, {"error", "unknown child case"}}
	}
	emit(o)
	return 0
}

// childConcurrent starts n failing logins at once and waits for all.
func childConcurrent(s *stacks, name, im string, n, delayUS int) obj {
	o := obj{{"case", name}, {"impl", im}, {"n", n}, {"delay_s", float64(delayUS) / 1e6}}
	c := txnCase{name: name, service: svcFailDelay, op: opAuth, fails: true}
	if name == "flood" {
		c.service = svcFlood
	}
	smp := startSampler("/proc/self/status")
	secs := make([]float64, n)
	var bad, notStarted int
	var firstErr string
	t0 := time.Now()
	switch im {
	case "c":
		ct := newCTxn(s, c.service, c.op, cAuthErr)
		bad, notStarted, secs = ct.concurrent(n, cThreadStackKiB)
	case "gopam", "gopam_run", "msteinert":
		txn := gopamTxnFor(im)
		if im == "msteinert" {
			txn = msteinertTxn
		}
		var nbad atomic.Int64
		var once sync.Once
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				t := time.Now()
				err := txn(s, c)
				secs[i] = time.Since(t).Seconds()
				if err != nil {
					nbad.Add(1)
					once.Do(func() { firstErr = err.Error() })
				}
			})
		}
		wg.Wait()
		bad = int(nbad.Load())
	default:
		return append(o, kv{"error", "unknown implementation"})
	}
	wall := time.Since(t0).Seconds()
	peak := smp.finish()
	done := slices.DeleteFunc(slices.Clone(secs), func(x float64) bool { return x < 0 })
	lo, hi := 0.0, 0.0
	if len(done) > 0 {
		lo, hi = slices.Min(done), slices.Max(done)
	}
	o = append(o, kv{"wall_s", round(wall, 3)}, kv{"login_min_s", round(lo, 3)}, kv{"login_max_s", round(hi, 3)},
		kv{"excess_s", round(wall-lo, 3)}, kv{"peak_threads", peak}, kv{"bad", bad}, kv{"not_started", notStarted})
	if firstErr != "" {
		o = append(o, kv{"first_error", firstErr})
	}
	return o
}

// leakTxn runs one transaction with every operation gopam offers on the leak
// stack (pam_stress, pam_env) with default settings: Start, Authenticate and
// AcctMgmt run on the caller's thread, EstablishCredentials onwards on a
// dedicated one, retired at Close.
func leakTxn(s *stacks) error {
	h, err := pam.Start(pam.Config{Service: svcLeak, User: benchUser, Conv: gopamConv, ConfDir: s.dir})
	if err != nil {
		return err
	}
	err = leakSteps(context.Background(), h)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}

// leakRunTxn runs the same transaction with pam.Run and
// context.Background(): every operation runs inside Run's function, on the
// caller's thread, and Run ends the transaction.
func leakRunTxn(s *stacks) error {
	return pam.Run(context.Background(), pam.Config{Service: svcLeak, User: benchUser, Conv: gopamConv, ConfDir: s.dir},
		leakSteps)
}

// leakSteps runs the operations of a leak transaction on h, from Authenticate
// to DeleteCredentials, stopping at the first error; it does not close h.
func leakSteps(ctx context.Context, h *pam.Handle) error {
	env := h.Env()
	steps := []func() error{
		func() error { return h.Authenticate(ctx, 0) },
		func() error { return h.AcctMgmt(ctx, 0) },
		func() error { return h.EstablishCredentials(ctx, 0) },
		func() error { return h.OpenSession(ctx, 0) },
		func() error { return env.Set("BENCH_SET", "value") },
		func() error {
			if _, ok, err := env.Get("BENCH_FROM_PAM_ENV"); err != nil || !ok {
				return fmt.Errorf("env get: %v, set %v", err, ok)
			}
			l, err := env.List()
			if err == nil && len(l) < 2 {
				err = fmt.Errorf("env list: %q", l)
			}
			return err
		},
		func() error { return h.CloseSession(ctx, 0) },
		func() error { return h.ChangeAuthTok(ctx, 0) },
		func() error { return h.DeleteCredentials(ctx, 0) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// childLeak runs n leak transactions after a warm-up and reports glibc's and
// Go's heap in use, the open file descriptors and the OS threads at five
// checkpoints.
func childLeak(s *stacks, im string, n int) obj {
	o := obj{{"case", "leak"}, {"impl", im}, {"n", n}}
	var txn func() error
	switch im {
	case "gopam":
		txn = func() error { return leakTxn(s) }
	case "gopam_run":
		txn = func() error { return leakRunTxn(s) }
	default:
		return append(o, kv{"error", "unknown implementation"})
	}
	mods, err := s.modules(svcLeak)
	if err != nil {
		return append(o, kv{"error", err.Error()})
	}
	warm := max(n/10, 1000)
	for range warm {
		if err := txn(); err != nil {
			return append(o, kv{"error", err.Error()})
		}
	}
	measure := func() (c, g uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return mallocInUse(), ms.HeapAlloc
	}
	var cs, gs []uint64
	var fds, ths []int
	var objs []int // the stack's module objects mapped, with the module cache on
	const parts = 4
	smp := startSampler("/proc/self/status")
	t0 := time.Now()
	for p := 0; p <= parts; p++ {
		c, g := measure()
		cs, gs = append(cs, c), append(gs, g)
		fd, _ := os.ReadDir("/proc/self/fd")
		th, _ := threadsOf("/proc/self/status")
		fds, ths = append(fds, len(fd)), append(ths, th)
		objs = append(objs, len(mappedOf(mods)))
		if p == parts {
			break
		}
		for range n / parts {
			if err := txn(); err != nil {
				return append(o, kv{"error", err.Error()})
			}
		}
	}
	el := time.Since(t0)
	peak := smp.finish()
	threads, _ := threadsOf("/proc/self/status")
	return append(o, kv{"warmup", warm},
		kv{"malloc_growth_bytes", int64(cs[parts]) - int64(cs[0])},
		kv{"go_heap_growth_bytes", int64(gs[parts]) - int64(gs[0])},
		kv{"malloc_inuse_bytes", cs}, kv{"go_heap_alloc_bytes", gs},
		kv{"fd_growth", fds[parts] - fds[0]}, kv{"thread_growth", ths[parts] - ths[0]},
		kv{"open_fds", fds}, kv{"os_threads", ths},
		kv{"module_cache", pam.ModuleCacheActive()}, kv{"module_objects_mapped", objs},
		kv{"module_objects_growth", objs[parts] - objs[0]},
		kv{"us_per_txn", round(float64(el.Microseconds())/float64(n), 1)},
		kv{"peak_threads", peak}, kv{"threads_after", threads})
}

// leakImpls are the implementations of leak: gopam under each policy and
// with Run.
var leakImpls = []string{"gopam", "gopam_run"}

// leakCase runs the leak child once per gopam policy (Run included) and
// prints its lines.
func leakCase(s *stacks, n int) map[string]obj {
	out := map[string]obj{}
	for _, im := range leakImpls {
		if len(onlyImpls) > 0 && !slices.Contains(onlyImpls, im) {
			continue
		}
		o := spawn(s, "leak", im, n, 0, 20*time.Minute)
		emit(o)
		out[im] = o
	}
	return out
}

var _ io.Writer = (*headWriter)(nil)
