package main

import (
	"fmt"
	"time"

	"github.com/gopam/pam"
)

// goals collects the figures that issue 3's acceptance criteria are about and
// judges them for each gopam way (gopamPolicies: Start/Close with default
// settings, and Run) side by side. It prints them as the last line: per goal,
// what is wanted, the figures the ways share, and per way its figures and
// "met"; then all_met per way, then issue 9's speed lines.
type goals struct {
	lines obj
	all   map[string]bool // per policy: every goal judged so far was met
	// issue 9's speed lines, each about named implementations.
	speed    obj
	speedMet bool
	speedAny bool
}

// ratioGoal records one of issue 9's lines: the ratio r[key] must be at most
// (below, when strict) limit.
func (g *goals) ratioGoal(name string, r timingResult, key string, limit float64, strict bool) {
	v, ok := r[key]
	if !ok {
		return
	}
	met := v <= limit
	op := "<="
	if strict {
		met, op = v < limit, "<"
	}
	if !g.speedAny {
		g.speedMet, g.speedAny = true, true
	}
	g.speedMet = g.speedMet && met
	g.speed = append(g.speed, kv{name + ": " + key, obj{{"want", op + " " + fmt.Sprint(limit)}, {"value", v}, {"met", met}}})
}

// add records one goal. per holds, for each policy that was measured, its
// verdict and figures.
func (g *goals) add(name, want string, shared obj, per map[string]verdict) {
	if g.all == nil {
		g.all = map[string]bool{}
	}
	o := obj{{"want", want}}
	for _, p := range gopamPolicies {
		v, ok := per[p]
		if !ok {
			continue
		}
		if _, seen := g.all[p]; !seen {
			g.all[p] = true
		}
		g.all[p] = g.all[p] && v.met
		o = append(o, kv{p, append(obj{{"met", v.met}}, v.figs...)})
	}
	g.lines = append(g.lines, kv{name, append(o, shared...)})
}

// A verdict is one policy's result for one goal.
type verdict struct {
	met  bool
	figs obj
}

func (g *goals) timing(name string, r timingResult) {
	// Issue 9: the module cache and no hand-off on the default path.
	switch name {
	case "permit":
		g.ratioGoal(name, r, "ratio_gopam_c", 0.5, false)
		g.ratioGoal(name, r, "ratio_gopam_c_warm", 1.15, false)
	case "login":
		g.ratioGoal(name, r, "ratio_gopam_run_c", 0.25, false)
		g.ratioGoal(name, r, "ratio_gopam_run_c_warm", 1.10, false)
		g.ratioGoal(name, r, "ratio_gopam_c_warm", 1.30, false)
		g.ratioGoal(name, r, "ratio_gopam_ctx_gopam", 1.5, false)
	}
	if name == "permit" || name == "echo1" || name == "batch3" || name == "login" {
		g.ratioGoal(name, r, "ratio_gopam_msteinert", 1, true)
	}
	if name != "permit" && name != "echo1" {
		return
	}
	mratio, mok := r["ratio_msteinert_c"]
	per := map[string]verdict{}
	for _, p := range gopamPolicies {
		ratio, ok := r["ratio_"+p+"_c"]
		if !ok || !mok {
			continue
		}
		per[p] = verdict{ratio <= 1.05 && ratio < mratio, obj{{"ratio_c", ratio}, {"ratio_msteinert", r["ratio_"+p+"_msteinert"]}}}
	}
	var shared obj
	for _, k := range []string{"ratio_msteinert_c", "ratio_c_txn_c", "ratio_c_call_c"} {
		if v, ok := r[k]; ok {
			shared = append(shared, kv{k, v})
		}
	}
	g.add(name, "gopam <= 1.05 x c and below msteinert", shared, per)
}

func (g *goals) parallel(r parallelResult) {
	per := map[string]verdict{}
	for _, p := range gopamPolicies {
		if sc, ok := r[p]; ok {
			per[p] = verdict{sc >= 1.8, obj{{"scaling", round(sc, 3)}}}
		}
	}
	g.add("parallel", "gopam 2 workers >= 1.8 x 1 worker", obj{{"scaling_c", round(r["c"], 3)},
		{"scaling_c_warm", round(r["c_warm"], 3)}, {"scaling_msteinert", round(r["msteinert"], 3)}}, per)
}

func (g *goals) faildelay(out map[string]obj) {
	per := map[string]verdict{}
	for _, p := range gopamPolicies {
		o, ok := out[p]
		if !ok {
			continue
		}
		f := func(k string) float64 {
			v, _ := o.get(k)
			x, _ := toFloat(v)
			return x
		}
		surv, _ := o.get("survived")
		// libpam randomises the delay (about 0.5x to 1.5x, the same for every
		// handle that started its call in the same second), so the wall time
		// is also judged with the random part taken out: the nominal delay
		// plus what the run took beyond its shortest login.
		norm := round(f("delay_s")+f("excess_s"), 3)
		met := surv == true && f("wall_s") > 0 && (f("wall_s") < 2.5 || norm < 2.5) && f("peak_threads") <= 64
		per[p] = verdict{met, obj{{"n", int(f("n"))}, {"wall_s", f("wall_s")}, {"libpam_delay_s", f("login_min_s")},
			{"wall_norm_s", norm}, {"peak_threads", int(f("peak_threads"))}}}
	}
	g.add("faildelay", "1,000 logins done in < 2.5 s with <= 64 OS threads", nil, per)
}

func (g *goals) flood(out map[string]obj) {
	msurv, _ := out["msteinert"].get("survived")
	limit := pam.MaxInFlight() + 64
	per := map[string]verdict{}
	for _, p := range gopamPolicies {
		o, ok := out[p]
		if !ok {
			continue
		}
		peak, _ := o.get("peak_threads")
		pf, _ := toFloat(peak)
		surv, _ := o.get("survived")
		per[p] = verdict{surv == true && pf <= float64(limit) && msurv == false,
			obj{{"survived", surv}, {"peak_threads", peak}}}
	}
	g.add("flood", "gopam survives with peak threads <= MaxInFlight()+64; msteinert dies", obj{
		{"limit", limit}, {"survived_msteinert", msurv}}, per)
}

func (g *goals) leak(out map[string]obj) {
	per := map[string]verdict{}
	for _, p := range gopamPolicies {
		o, ok := out[p]
		if !ok {
			continue
		}
		c, _ := o.get("malloc_growth_bytes")
		h, _ := o.get("go_heap_growth_bytes")
		m, _ := o.get("module_objects_growth")
		cf, ok1 := toFloat(c)
		hf, ok2 := toFloat(h)
		mf, ok3 := toFloat(m)
		per[p] = verdict{ok1 && ok2 && ok3 && cf < 1<<20 && hf < 1<<20 && mf == 0,
			obj{{"malloc_growth_bytes", c}, {"go_heap_growth_bytes", h}, {"module_objects_growth", m}}}
	}
	g.add("leak", "growth < 1 MiB (glibc and Go heap), module objects mapped flat (cache on)", nil, per)
}

func (g *goals) emit(elapsed time.Duration, otherPct float64) {
	all := obj{}
	judged := []string{}
	for _, p := range gopamPolicies {
		if met, ok := g.all[p]; ok {
			all = append(all, kv{p, met})
			judged = append(judged, p)
		}
	}
	line := append(append(obj{{"case", "goals"}, {"impls", judged}}, g.lines...), kv{"all_met", all})
	if g.speedAny {
		line = append(line, kv{"issue9_speed", g.speed}, kv{"issue9_speed_all_met", g.speedMet})
	}
	emit(append(line, kv{"elapsed_s", round(elapsed.Seconds(), 1)}, kv{"other_cpu_pct", otherPct}))
}
