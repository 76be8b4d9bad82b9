package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// timingResult holds the median ns per transaction of each implementation.
type timingResult map[string]float64

// variantOrder is the order implementations are printed and compared in.
var variantOrder = []string{"c", "c_warm", "c_txn", "c_call", "gopam", "gopam_run", "gopam_run_ctx", "gopam_ctx",
	"msteinert"}

// gopamPolicies are the gopam implementations issue 3's goals are judged on:
// Start/Close with default settings, and Run, both with
// context.Background().
var gopamPolicies = []string{"gopam", "gopam_run"}

// timeCase measures c sequentially: reps repetitions of n transactions per
// implementation, the implementations interleaved (rotated each repetition)
// so that drift spreads over all of them.
func timeCase(s *stacks, c txnCase, st settings) (timingResult, error) {
	m := startMeter()
	impls := implsFor(s, c, true)
	slices.SortFunc(impls, func(a, b impl) int {
		return slices.Index(variantOrder, a.name) - slices.Index(variantOrder, b.name)
	})
	for _, im := range impls {
		if err := im.measured(max(st.n/10, 50), 1, untimed); err != nil {
			return nil, err
		}
	}
	samples := map[string][]float64{}
	for r := range st.reps {
		for k := range impls {
			im := impls[(k+r)%len(impls)]
			var el time.Duration
			if err := im.measured(st.n, 1, func(run func() error) error {
				runtime.GC()
				t0 := time.Now()
				err := run()
				el = time.Since(t0)
				return err
			}); err != nil {
				return nil, err
			}
			samples[im.name] = append(samples[im.name], float64(el.Nanoseconds())/float64(st.n))
		}
	}
	res := timingResult{}
	for _, im := range impls {
		xs := samples[im.name]
		m := median(xs)
		res[im.name] = m
		emit(obj{{"case", c.name}, {"impl", im.name}, {"ns_per_txn", round(m, 0)},
			{"min_ns", round(slices.Min(xs), 0)}, {"max_ns", round(slices.Max(xs), 0)},
			{"reps", st.reps}, {"n", st.n}, {"note", implNote[im.name]}})
	}
	// Ratios are medians of the ratios within each repetition, where the
	// implementations ran back to back, which cancels slow drift (and the
	// load of other processes) better than a ratio of medians.
	paired := func(a, b string) float64 {
		xs, ys := samples[a], samples[b]
		if len(xs) == 0 || len(ys) != len(xs) {
			return 0
		}
		rs := make([]float64, len(xs))
		for i := range xs {
			rs[i] = xs[i] / ys[i]
		}
		return round(median(rs), 3)
	}
	ratio := obj{{"case", c.name}}
	add := func(a, b string) {
		_, okA := samples[a]
		_, okB := samples[b]
		if okA && okB {
			k := "ratio_" + a + "_" + b
			res[k] = paired(a, b)
			ratio = append(ratio, kv{k, res[k]})
		}
	}
	for _, name := range variantOrder[1:] {
		add(name, "c")
	}
	for _, name := range variantOrder[2:] {
		add(name, "c_warm")
	}
	for _, name := range gopamPolicies {
		add(name, "msteinert")
		add(name, "c_call")
		add(name, "c_txn")
	}
	add("gopam_run", "gopam")
	add("gopam_ctx", "gopam")
	emit(append(ratio, kv{"other_cpu_pct", m.otherPct()}))
	return res, nil
}

// untimed runs an implementation's warm-up.
func untimed(run func() error) error { return run() }

var implNote = map[string]string{
	"c":             "C loop, one foreign call per batch",
	"c_warm":        "C loop, one foreign call per batch, the stack's modules held loaded by the process (dlopen)",
	"c_txn":         "C transaction, one foreign call per transaction",
	"c_call":        "C, one foreign call per PAM call (start, op, end) from one goroutine",
	"gopam":         "github.com/gopam/pam, default settings (the caller's thread until a credential or session call), context.Background()",
	"gopam_run":     "github.com/gopam/pam, pam.Run (the transaction on the caller's locked thread), context.Background()",
	"gopam_run_ctx": "github.com/gopam/pam, pam.Run, a cancellable context with a deadline (the transaction on a goroutine of its own)",
	"gopam_ctx":     "github.com/gopam/pam, default settings, a cancellable context with a deadline",
	"msteinert":     "github.com/msteinert/pam/v2",
}

// parallelResult holds, per implementation, the throughput scaling from one
// worker to two.
type parallelResult map[string]float64

// parallelCase measures permit with one and with two workers (goroutines, or
// C threads for c) and reports the throughput ratio per implementation.
func parallelCase(s *stacks, st settings) (parallelResult, error) {
	m := startMeter()
	c := txnCase{name: "parallel", service: svcPermit, op: opAuth}
	// c_warm is the floor the warm cache aims at: how far two C threads
	// scale when neither loads or unloads a module.
	impls := implsFor(s, c, false)
	for _, im := range impls {
		if err := im.measured(50, 2, untimed); err != nil {
			return nil, err
		}
	}
	tput := map[string]map[int][]float64{}
	scal := map[string][]float64{} // per repetition: 2 workers / 1 worker, measured back to back
	for r := range st.reps {
		for k := range impls {
			im := impls[(k+r)%len(impls)]
			if tput[im.name] == nil {
				tput[im.name] = map[int][]float64{}
			}
			ws := []int{1, 2}
			if r%2 == 1 {
				ws = []int{2, 1}
			}
			for _, w := range ws {
				var el float64
				if err := im.measured(st.parN, w, func(run func() error) error {
					runtime.GC()
					t0 := time.Now()
					err := run()
					el = time.Since(t0).Seconds()
					return err
				}); err != nil {
					return nil, err
				}
				tput[im.name][w] = append(tput[im.name][w], float64(w*st.parN)/el)
			}
			t := tput[im.name]
			scal[im.name] = append(scal[im.name], t[2][len(t[2])-1]/t[1][len(t[1])-1])
		}
	}
	res := parallelResult{}
	ratio := obj{{"case", "parallel"}}
	for _, im := range impls {
		t1, t2 := median(tput[im.name][1]), median(tput[im.name][2])
		sc := median(scal[im.name])
		res[im.name] = sc
		emit(obj{{"case", "parallel"}, {"impl", im.name},
			{"txn_per_s_1", round(t1, 0)}, {"txn_per_s_2", round(t2, 0)},
			{"ns_per_txn_1", round(1e9/t1, 0)}, {"ns_per_txn_2", round(1e9/t2, 0)},
			{"scaling_2_1", round(sc, 3)}, {"scaling_min", round(slices.Min(scal[im.name]), 3)},
			{"scaling_max", round(slices.Max(scal[im.name]), 3)}, {"reps", st.reps}, {"n_per_worker", st.parN}})
		ratio = append(ratio, kv{"scaling_" + im.name, round(sc, 3)})
		res[im.name+"_t2"] = t2
	}
	// With two workers: C's throughput over the implementation's, that is,
	// the implementation's time per transaction over C's.
	for _, name := range []string{"gopam", "gopam_run", "msteinert"} {
		for _, base := range []string{"c", "c_warm"} {
			if res[base+"_t2"] > 0 && res[name+"_t2"] > 0 {
				ratio = append(ratio, kv{"ratio_" + name + "_" + base + "_2workers", round(res[base+"_t2"]/res[name+"_t2"], 3)})
			}
		}
	}
	ratio = append(ratio, kv{"other_cpu_pct", m.otherPct()})
	emit(ratio)
	if len(res) == 0 {
		return nil, fmt.Errorf("parallel: no result")
	}
	return res, nil
}
