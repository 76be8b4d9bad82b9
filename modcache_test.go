//go:build linux

package pam_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// withCache runs the test with the module cache on (or off) and restores
// the process's setting after it.
func withCache(t *testing.T, on bool) {
	t.Helper()
	was := pam.ModuleCacheActive()
	if got := pam.SetModuleCache(on); got != on {
		t.Fatalf("SetModuleCache(%v) left it %v", on, got)
	}
	t.Cleanup(func() { pam.SetModuleCache(was) })
}

// mappedCount counts the mappings of the file at path in this process.
func mappedCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 6 && (f[5] == path || f[5] == real) {
			n++
		}
	}
	return n
}

// loaderCounts reads the loader's counters of objects added and removed.
func loaderCounts(t *testing.T) (uint64, uint64) {
	t.Helper()
	a, s, ok := pam.LoaderCounts()
	if !ok {
		t.Fatal("the loader's counters (dl_iterate_phdr) are unavailable")
	}
	return a, s
}

func permitTxn(t *testing.T, st *pamtest.Stack, svc string) error {
	t.Helper()
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		return err
	}
	err = h.Authenticate(context.Background(), 0)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestModuleCacheKeepsModulesLoaded: with the cache on, the first transaction
// on a stack loads its module and the cache keeps it mapped; a second
// transaction maps no new object and its pam_end unmaps none. With the cache
// off every transaction loads and unloads the module, as libpam does.
func TestModuleCacheKeepsModulesLoaded(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("cached", "auth required "+mod)
	waitLive(t, 0)

	withCache(t, true)
	if n := mappedCount(t, mod); n != 0 {
		t.Fatalf("the module is mapped %d times before any transaction", n)
	}
	if err := permitTxn(t, st, svc); err != nil {
		t.Fatal(err)
	}
	if n := mappedCount(t, mod); n == 0 {
		t.Fatal("the cache did not keep the module mapped after pam_end")
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Fatalf("cached modules %q do not include %s", pam.CachedModules(), mod)
	}
	adds, subs := loaderCounts(t)
	maps := mappedCount(t, mod)
	for range 3 {
		if err := permitTxn(t, st, svc); err != nil {
			t.Fatal(err)
		}
	}
	if a, s := loaderCounts(t); a != adds || s != subs {
		t.Errorf("warm transactions loaded %d and unloaded %d objects, want none", a-adds, s-subs)
	}
	if n := mappedCount(t, mod); n != maps {
		t.Errorf("the module has %d mappings after warm transactions, %d before", n, maps)
	}

	// Off: the reference is released at once, and transactions load and
	// unload the module again.
	if pam.SetModuleCache(false) || pam.ModuleCacheActive() {
		t.Fatal("the cache stayed active after SetModuleCache(false)")
	}
	if n := mappedCount(t, mod); n != 0 {
		t.Fatalf("the module is still mapped %d times with the cache off", n)
	}
	if len(pam.CachedModules()) != 0 {
		t.Fatalf("the cache off still holds %q", pam.CachedModules())
	}
	adds, subs = loaderCounts(t)
	for range 3 {
		if err := permitTxn(t, st, svc); err != nil {
			t.Fatal(err)
		}
		if n := mappedCount(t, mod); n != 0 {
			t.Fatalf("the cache off: the module stayed mapped (%d) after pam_end", n)
		}
	}
	if a, s := loaderCounts(t); a-adds < 3 || s-subs < 3 {
		t.Errorf("the cache off: 3 transactions loaded %d and unloaded %d objects, want at least 3 each", a-adds, s-subs)
	}
}

// versioned is a module whose authenticate returns the code it was built
// with, so that a test can tell which build a transaction ran.
func versioned(code string) string {
	return `#include <security/pam_modules.h>
int pam_sm_authenticate(pam_handle_t *h, int f, int c, const char **v) { (void)h; (void)f; (void)c; (void)v; return ` + code + `; }
int pam_sm_setcred(pam_handle_t *h, int f, int c, const char **v) { (void)h; (void)f; (void)c; (void)v; return PAM_SUCCESS; }
`
}

// TestModuleCacheUpgrade: a module rebuilt with different behaviour and
// renamed over the old file (as a package upgrade does) is used by the next
// transaction that starts after the last one using the old code ended; a
// transaction still running keeps the old code.
func TestModuleCacheUpgrade(t *testing.T) {
	withCache(t, true)
	st := pamtest.New(t)
	dir := t.TempDir()
	mod := filepath.Join(dir, "pam_versioned.so")
	if err := os.Rename(pamtest.CompileModule(t, "pam_v1", versioned("PAM_SUCCESS")), mod); err != nil {
		t.Fatal(err)
	}
	svc := st.Service("upgrade", "auth required "+mod)
	if err := permitTxn(t, st, svc); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Fatalf("version 1 is not cached: %q", pam.CachedModules())
	}

	// A transaction in progress while the file is replaced.
	old, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pamtest.CompileModule(t, "pam_v2", versioned("PAM_AUTH_ERR")), mod); err != nil {
		t.Fatal(err)
	}
	if err := old.Authenticate(context.Background(), 0); err != nil {
		t.Errorf("the transaction started before the upgrade: %v, want version 1's success", err)
	}
	// One that starts while the old code is still loaded by the other gets
	// the old code too: the loader finds the object by its name.
	if err := permitTxn(t, st, svc); err != nil {
		t.Errorf("a transaction started while the old code was in use: %v, want version 1's success", err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pam.CachedModules(), mod) {
		t.Fatal("the replaced module is still cached")
	}
	for i := range 2 {
		if err := permitTxn(t, st, svc); !errors.Is(err, pam.ErrAuth) {
			t.Fatalf("transaction %d after the upgrade: %v, want version 2's ErrAuth", i, err)
		}
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Errorf("version 2 is not cached: %q", pam.CachedModules())
	}
}

// TestModuleCacheBound: with more stacks (each with a module object of its
// own) than the cache's bound, the cache never holds more than the bound and
// keeps the newest.
func TestModuleCacheBound(t *testing.T) {
	withCache(t, true)
	const limit, stacks = 3, 7
	pam.SetModuleCacheLimit(limit)
	t.Cleanup(func() { pam.SetModuleCacheLimit(0) })
	st := pamtest.New(t)
	var mods, svcs []string
	for i := range stacks {
		// A copy per stack: distinct files are distinct objects.
		mod := filepath.Join(t.TempDir(), "pam_gotest"+strconv.Itoa(i)+".so")
		b, err := os.ReadFile(testmodule.Build(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mod, b, 0o755); err != nil {
			t.Fatal(err)
		}
		mods = append(mods, mod)
		svcs = append(svcs, st.Service("bound"+strconv.Itoa(i), "auth required "+mod))
	}
	for round := range 2 {
		for i, svc := range svcs {
			if err := permitTxn(t, st, svc); err != nil {
				t.Fatal(err)
			}
			cached := pam.CachedModules()
			if len(cached) > limit {
				t.Fatalf("round %d, stack %d: the cache holds %d objects, bound %d: %q", round, i, len(cached), limit, cached)
			}
			if !slices.Contains(cached, mods[i]) {
				t.Fatalf("round %d: the module of the stack just used is not cached: %q", round, cached)
			}
		}
	}
	mapped := 0
	for _, m := range mods {
		if mappedCount(t, m) > 0 {
			mapped++
		}
	}
	if mapped > limit {
		t.Errorf("%d of the stacks' modules stay mapped, bound %d", mapped, limit)
	}
}

// TestModuleCacheManyGoroutines: 100 goroutines of 100 transactions each over
// three stacks with the cache on (run under -race by the test command).
func TestModuleCacheManyGoroutines(t *testing.T) {
	withCache(t, true)
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svcs := []string{
		st.Service("many-a", "auth required pam_permit.so", "account required pam_permit.so"),
		st.Service("many-b", "auth required "+mod+" nmsg=1", "account required "+mod),
		st.Service("many-c", "auth optional pam_echo.so hello", "auth required pam_permit.so",
			"account required pam_permit.so"),
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 100 {
		wg.Go(func() {
			for i := range n {
				svc := svcs[(g+i)%len(svcs)]
				h, err := pam.Start(pam.Config{Service: svc, User: "u" + strconv.Itoa(g), ConfDir: st.Dir(), Conv: pam.Answers()})
				if err != nil {
					errs <- err
					return
				}
				err = h.Login(context.Background(), 0)
				if cerr := h.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", svc, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Errorf("the test module is not cached: %q", pam.CachedModules())
	}
}

// versionedStack builds a module that authenticates successfully (v1) in a
// directory of its own, a stack of it, and a rebuild that fails (v2), ready
// to be renamed over it; the watch's pending events are drained first.
func versionedStack(t *testing.T, name string) (st *pamtest.Stack, svc, mod, v2 string) {
	t.Helper()
	withCache(t, true)
	st = pamtest.New(t)
	mod = filepath.Join(t.TempDir(), "pam_versioned.so")
	if err := os.Rename(pamtest.CompileModule(t, "pam_v1", versioned("PAM_SUCCESS")), mod); err != nil {
		t.Fatal(err)
	}
	v2 = pamtest.CompileModule(t, "pam_v2", versioned("PAM_AUTH_ERR"))
	// Last, a start drains the events that other tests and the builds left
	// in watched directories.
	if err := permitTxn(t, st, st.Service("drain-"+name, "auth required pam_permit.so")); err != nil {
		t.Fatal(err)
	}
	return st, st.Service(name, "auth required "+mod), mod, v2
}

// burst starts 2n transactions on svc, half of them through Run, and returns
// the channel their results arrive on.
func burst(st *pamtest.Stack, svc string, n int) <-chan error {
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		go func() {
			if i%2 == 0 {
				errs <- pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()},
					func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
				return
			}
			h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), Threads: pam.ThreadCaller})
			if err == nil {
				err = h.Authenticate(context.Background(), 0)
				h.Close()
			}
			errs <- err
		}()
	}
	return errs
}

// TestModuleCacheBurstTakesNoThreads: no start waits for the module cache
// while its goroutine is locked to its thread, since such a wait parks the
// OS thread with it: a burst of 200 failing logins once took up to 205
// threads so. (1) With no file change pending, starts never wait: 128 run to
// their end while the test holds the cache's mutex (their scans for new
// objects are left to a later start), or wait before their start. (2) With a change pending, the starts
// wait for the mutex, but before their threads are locked: with 128 waiting
// (their stacks say so, a state, not a time), the process has far fewer than
// 128 more threads.
func TestModuleCacheBurstTakesNoThreads(t *testing.T) {
	const n = 64
	st, svc, mod, _ := versionedStack(t, "burst")
	if err := permitTxn(t, st, svc); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Fatalf("%s is not cached: %v", mod, pam.CachedModules())
	}

	// Each start either ends or waits in the look for changed files, which
	// a change a directory's removal reports late (another test's) can
	// send to the mutex; none waits in the scan after the start.
	release := pam.HoldModuleCache()
	errs := burst(st, svc, n)
	ended := 0
	waitUntil(t, func() bool {
		for ; len(errs) > 0; ended++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		return ended+waitingIn("libpam.(*modCache).beforeStart") == 2*n
	}, func() string {
		return fmt.Sprintf("with the cache's mutex held: %d starts ended, %d wait before their start, %d after; want all %d ended or before",
			ended, waitingIn("libpam.(*modCache).beforeStart"), waitingIn("libpam.(*modCache).afterStart"), 2*n)
	})
	release()
	for ; ended < 2*n; ended++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	// A file created beside the module makes the watch report a change.
	if err := os.WriteFile(filepath.Join(filepath.Dir(mod), "touched"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := osThreads(t)
	release = pam.HoldModuleCache()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	errs = burst(st, svc, n)
	waitUntil(t, func() bool { return waitingIn("libpam.(*modCache).beforeStart") == 2*n }, func() string {
		return fmt.Sprintf("%d of %d starts wait for the module cache", waitingIn("libpam.(*modCache).beforeStart"), 2*n)
	})
	if got := osThreads(t); got >= before+n {
		t.Errorf("%d starts waiting for the module cache: %d OS threads, %d before; a wait must hold no thread", 2*n, got, before)
	}
	release()
	released = true
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestModuleCacheUpgradeWhileDraining: a start that comes after a module's
// file was replaced, while another start has read the watch's events but not
// yet released the old object, waits for the release and runs the new file.
func TestModuleCacheUpgradeWhileDraining(t *testing.T) {
	st, svc, mod, v2 := versionedStack(t, "draining")
	if err := permitTxn(t, st, svc); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pam.CachedModules(), mod) {
		t.Fatal("v1 is not cached")
	}
	waitLive(t, 0)
	inHook, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	libpam.TestHookAfterDrain = func() { once.Do(func() { close(inHook); <-proceed }) }
	defer func() { libpam.TestHookAfterDrain = nil }()
	if err := os.Rename(v2, mod); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- permitTxn(t, st, svc) }()
	<-inHook // the first start drained the events and waits in the hook
	second := make(chan error, 1)
	go func() { second <- permitTxn(t, st, svc) }()
	waitUntil(t, func() bool { return waitingIn("libpam.(*modCache).beforeStart") == 2 || len(second) > 0 }, func() string {
		return fmt.Sprintf("%d starts in the cache's look for changes, want 2 (the second waits)", waitingIn("libpam.(*modCache).beforeStart"))
	})
	if len(second) > 0 {
		close(proceed)
		t.Fatalf("a start after the upgrade ran while the old object was not yet released (got %v), instead of waiting", <-second)
	}
	close(proceed)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, pam.ErrAuth) {
			t.Errorf("a start after the upgrade, with no old transaction alive: %v, want v2's ErrAuth", err)
		}
	}
}

// TestModuleCacheSkippedScanKeepsNoOldCode: a start whose scan for new
// objects was skipped (another start held the cache) leaves its module
// uncached; when the file is then replaced while that transaction still
// runs, a later scan must not cache the old object under the new file's
// identity, which no check would ever release.
func TestModuleCacheSkippedScanKeepsNoOldCode(t *testing.T) {
	st, svc, mod, v2 := versionedStack(t, "skipped")
	libpam.TestHookScanBusy.Store(true) // as when another start holds the cache
	t1, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), Threads: pam.ThreadCaller})
	libpam.TestHookScanBusy.Store(false)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pam.CachedModules(), mod) {
		t.Fatal("the start's scan ran although the cache was held")
	}
	if err := os.Rename(v2, mod); err != nil {
		t.Fatal(err)
	}
	permitTxn(t, st, svc) // overlaps t1, so it runs the old code, whatever it returns
	t1.Close()
	waitLive(t, 0)
	for i := range 3 {
		if err := permitTxn(t, st, svc); !errors.Is(err, pam.ErrAuth) {
			t.Errorf("transaction %d after the upgrade, none of the old code alive: %v, want v2's ErrAuth", i, err)
		}
	}
}

// waitingIn counts the goroutines whose stack holds fn.
func waitingIn(fn string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	c := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			c++
		}
	}
	return c
}
