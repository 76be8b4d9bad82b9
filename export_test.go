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

// SetDefaultThreads sets the policy of Configs that name none, so that the
// suite can run under each policy (GOPAM_TEST_THREADS=per-call).
func SetDefaultThreads(p ThreadPolicy) { defaultThreads = p }

// FailDelayChosen returns the fail delay libpam chose at the end of h's last
// Authenticate or ChangeAuthTok, as the PAM_FAIL_DELAY callback recorded it.
// Call it on the goroutine that made that call, after it returned.
func FailDelayChosen(h *Handle) time.Duration {
	return time.Duration(h.s.delayUsec) * time.Microsecond
}
