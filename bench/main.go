// Command bench measures gopam against the same PAM transactions written in C
// and against github.com/msteinert/pam/v2, and prints one JSON object per
// line. See README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gopam/pam"
)

// settings are the sizes of one run.
type settings struct {
	quick      bool
	reps       int // repetitions of each timing measurement
	n          int // transactions per repetition (timing cases)
	parN       int // transactions per worker per repetition (parallel)
	failN      int // concurrent logins in faildelay
	failDelay  int // pam_faildelay delay in faildelay, µs
	floodN     int // concurrent logins in flood; 0 skips it
	floodDelay int // pam_faildelay delay in flood, µs
	leakN      int // transactions in leak
}

func main() {
	quick := flag.Bool("quick", false, "smaller sizes; finishes in under a minute on 2 cores, skips flood")
	reps := flag.Int("reps", 0, "repetitions of each timing measurement (0: 7 with -quick, else 15)")
	n := flag.Int("n", 0, "transactions per repetition in the timing cases (0: 300 with -quick, else 1000)")
	only := flag.String("cases", "", "comma-separated cases to run (default: all)")
	impls := flag.String("impls", "", "comma-separated implementations to run (default: all; for profiling)")
	// Hidden: the bench re-executes itself to run one implementation of a
	// case in a child process.
	child := flag.String("child", "", "")
	childImpl := flag.String("child-impl", "", "")
	childN := flag.Int("child-n", 0, "")
	childDelay := flag.Int("child-delay-us", 0, "")
	childConf := flag.String("child-confdir", "", "")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run . [-quick] [-reps N] [-n N] [-cases permit,echo1,batch3,login,parallel,faildelay,flood,leak] [-impls c,c_warm,c_txn,c_call,gopam,gopam_run,gopam_run_ctx,gopam_ctx,msteinert]\n")
		flag.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Name, "child") {
				fmt.Fprintf(os.Stderr, "  -%s\t%s\n", f.Name, f.Usage)
			}
		})
	}
	flag.Parse()

	if *child != "" {
		os.Exit(runChild(*child, *childImpl, *childN, *childDelay, *childConf))
	}

	st := settings{quick: *quick, reps: 15, n: 1000, parN: 1000, failN: 1000, failDelay: 2_000_000,
		floodN: 20_000, floodDelay: 6_000_000, leakN: 200_000}
	if st.quick {
		st.reps, st.n, st.parN, st.failN, st.floodN, st.leakN = 7, 300, 300, 200, 0, 20_000
	}
	if *reps > 0 {
		st.reps = *reps
	}
	if *n > 0 {
		st.n = *n
	}
	want := map[string]bool{}
	for _, c := range strings.Split(*only, ",") {
		if c = strings.TrimSpace(c); c != "" {
			want[c] = true
		}
	}
	run := func(c string) bool { return len(want) == 0 || want[c] }
	for _, im := range strings.Split(*impls, ",") {
		if im = strings.TrimSpace(im); im != "" {
			onlyImpls = append(onlyImpls, im)
		}
	}

	if err := bench(st, run); err != nil {
		emit(obj{{"case", "error"}, {"error", err.Error()}})
		os.Exit(1)
	}
}

func bench(st settings, run func(string) bool) error {
	emit(machine(st))
	s, err := writeStacks(st.failDelay, st.floodDelay)
	if err != nil {
		return err
	}
	defer s.remove()
	g := &goals{}
	begin := time.Now()
	m := startMeter()

	for _, c := range []txnCase{
		{name: "permit", service: svcPermit, op: opAuth},
		{name: "echo1", service: svcEcho1, op: opAuth},
		{name: "batch3", service: svcBatch3, op: opChauthtok},
		{name: "login", service: svcLogin, op: opLogin,
			only: []string{"c", "c_warm", "gopam", "gopam_run", "gopam_ctx", "msteinert"}},
	} {
		if !run(c.name) {
			continue
		}
		logf("%s: %d x %d transactions per implementation", c.name, st.reps, st.n)
		r, err := timeCase(s, c, st)
		if err != nil {
			return err
		}
		g.timing(c.name, r)
	}
	if run("parallel") {
		logf("parallel: %d x %d transactions per worker", st.reps, st.parN)
		r, err := parallelCase(s, st)
		if err != nil {
			return err
		}
		g.parallel(r)
	}
	if run("faildelay") {
		logf("faildelay: %d concurrent failing logins, %.1f s delay", st.failN, float64(st.failDelay)/1e6)
		g.faildelay(concurrentCase(s, "faildelay", st.failN, st.failDelay, 60*time.Second))
	}
	if run("flood") && st.floodN > 0 {
		logf("flood: %d concurrent failing logins, %.1f s delay", st.floodN, float64(st.floodDelay)/1e6)
		g.flood(concurrentCase(s, "flood", st.floodN, st.floodDelay, 180*time.Second))
	}
	if run("leak") {
		logf("leak: %d transactions with every operation (gopam: each policy, and Run)", st.leakN)
		g.leak(leakCase(s, st.leakN))
	}
	g.emit(time.Since(begin), m.otherPct())
	return nil
}

// machine describes where the figures come from.
func machine(st settings) obj {
	o := obj{{"case", "machine"}, {"nproc", runtime.NumCPU()}, {"gomaxprocs", runtime.GOMAXPROCS(0)},
		{"go", runtime.Version()}, {"goos", runtime.GOOS}, {"goarch", runtime.GOARCH}}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		o = append(o, kv{"kernel", strings.TrimSpace(string(b))})
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				o = append(o, kv{"cpu", strings.TrimSpace(v)})
				break
			}
		}
	}
	libpam := "unknown"
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "libpam0g").Output(); err == nil {
		libpam = strings.TrimSpace(string(out))
	}
	o = append(o, kv{"libpam", libpam}, kv{"pam_implementation", pam.Implementation()})
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/msteinert/pam/v2" {
				o = append(o, kv{"msteinert", d.Version})
			}
		}
	}
	if out, err := exec.Command("git", "-C", "..", "describe", "--always", "--dirty").Output(); err == nil {
		o = append(o, kv{"gopam_commit", strings.TrimSpace(string(out))})
	}
	if md, err := moduleDir(); err == nil {
		o = append(o, kv{"module_dir", md})
	}
	return append(o, kv{"quick", st.quick}, kv{"max_in_flight", pam.MaxInFlight()}, kv{"loadavg", loadavg()})
}
