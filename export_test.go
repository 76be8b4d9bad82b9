package pam

import (
	"time"

	"github.com/gopam/pam/internal/libpam"
)

// Test hooks: the external tests count what the library holds.

// MallocInUse reports the C heap's bytes in use (glibc mallinfo2).
func MallocInUse() (uint64, bool) { return libpam.MallocInUse() }

// LiveTransactions counts the transactions whose trampolines are registered:
// started and not yet ended.
func LiveTransactions() int { return libpam.Registered() }

// CallsInFlight counts the PAM calls holding a call slot.
func CallsInFlight() int { return inFlight() }

// ThreadsHeld counts the OS threads serving a handle now.
func ThreadsHeld() int { return int(held.Load()) }

// DelaysWaiting counts the operations waiting out a fail delay in Go now.
func DelaysWaiting() int { return int(delaysWaiting.Load()) }

// SetDefaultThreads sets the policy of Configs that name none, so that the
// suite can run under the strict policy too (GOPAM_TEST_THREADS=strict).
func SetDefaultThreads(p ThreadPolicy) { defaultThreads = p }

// FailDelayChosen returns the fail delay libpam chose at the end of h's last
// Authenticate or ChangeAuthTok, as the PAM_FAIL_DELAY callback recorded it.
// Call it on the goroutine that made that call, after it returned.
func FailDelayChosen(h *Handle) time.Duration {
	return time.Duration(h.s.delayUsec) * time.Microsecond
}

// ThreadCaller is ThreadDefault's placement (the caller's thread until the
// first credential or session call) whatever SetDefaultThreads said.
const ThreadCaller = threadCaller

// CachedModules lists the module objects the cache holds, oldest first.
func CachedModules() []string { return libpam.CachedModules() }

// SetModuleCacheLimit changes the cache's bound (n < 1: the default).
func SetModuleCacheLimit(n int) { libpam.SetModuleCacheLimit(n) }

// HoldModuleCache takes the module cache's mutex until release is called.
func HoldModuleCache() (release func()) { return libpam.HoldCacheForTest() }

// LoaderCounts returns the loader's counts of objects added and removed.
func LoaderCounts() (adds, subs uint64, ok bool) {
	l, err := libpam.Load()
	if err != nil {
		return 0, 0, false
	}
	return l.LoaderCounts()
}

// TraceSlots makes p account its slot-time in use (SlotTrace reads it).
func TraceSlots(p *Slots) {
	p.mu.Lock()
	p.trace, p.lastUsedChange = true, time.Now()
	p.mu.Unlock()
}

// SlotTrace returns the slot-time p's slots were in use and how many times a
// slot was granted, since TraceSlots.
func SlotTrace(p *Slots) (busy time.Duration, grants int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.add(0)
	return p.busy, p.grants
}
