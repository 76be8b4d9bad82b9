package pam

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopam/pam/internal/libpam"
)

// ThreadPolicy says which OS threads run a handle's PAM calls. libpam allows
// one handle per thread at a time, and some modules leave per-thread state
// (file-system IDs, SELinux contexts) that belongs to the transaction that
// set it; a Go program's goroutines, meanwhile, move between threads.
type ThreadPolicy int

const (
	// ThreadDefault, the zero value, means ThreadPerHandle.
	ThreadDefault ThreadPolicy = iota

	// ThreadPerHandle runs every call of the handle on one OS thread locked
	// for the handle's life, whichever goroutine calls. Each call is a
	// hand-off to that thread, which costs two thread switches. This is the
	// default. Run gives the same guarantee without the hand-offs, for a
	// transaction that one goroutine runs from start to end.
	ThreadPerHandle

	// ThreadPerCall runs each call on one OS thread locked for that call:
	// the caller's own thread when the call's context cannot be cancelled
	// (no hand-off at all), or a new goroutine's thread otherwise, so that
	// the call can still be abandoned. From the handle's first credential or
	// session call on, whose modules leave state on the thread, every later
	// call runs on one dedicated thread as with ThreadPerHandle. It suits
	// servers that authenticate many users and open no sessions in-process:
	// short stacks run at nearly the speed of C.
	ThreadPerCall
)

// defaultThreads is the policy of a Config that names none. Only tests change
// it, to run the whole suite under each policy.
var defaultThreads = ThreadPerHandle

// A worker is a goroutine locked to one OS thread, serving the calls of one
// handle at a time.
type worker struct {
	work chan func()
	done chan struct{}
}

// idle holds workers whose last transaction left their thread clean (it ran
// neither credential nor session operations), ready to serve another handle
// without the cost of a new thread.
var idle struct {
	sync.Mutex
	ws []*worker
}

// maxIdle bounds how many parked threads the pool keeps.
func maxIdle() int { return max(4, runtime.GOMAXPROCS(0)) }

// held counts the workers serving a handle now, for tests and benchmarks.
var held atomic.Int64

func acquireWorker() *worker {
	held.Add(1)
	idle.Lock()
	if n := len(idle.ws); n > 0 {
		w := idle.ws[n-1]
		idle.ws = idle.ws[:n-1]
		idle.Unlock()
		return w
	}
	idle.Unlock()
	w := &worker{work: make(chan func()), done: make(chan struct{}, 1)}
	go w.loop()
	return w
}

// release returns w to the pool, or retires it (and its thread) when its
// thread may carry state from the transaction or the pool is full.
func (w *worker) release(reusable bool) {
	held.Add(-1)
	if reusable {
		idle.Lock()
		if len(idle.ws) < maxIdle() {
			idle.ws = append(idle.ws, w)
			idle.Unlock()
			return
		}
		idle.Unlock()
	}
	close(w.work)
}

// run runs f on w's thread and waits for it.
func (w *worker) run(f func()) {
	w.work <- f
	<-w.done
}

func (w *worker) loop() {
	runtime.LockOSThread()
	for f := range w.work {
		f()
		w.done <- struct{}{}
	}
	// Returning while still locked makes the runtime end the thread rather
	// than hand it, with whatever state modules left on it, to other
	// goroutines.
}

// runsInline reports whether exec runs a call on the caller's own thread;
// inline says whether the call's context allows it.
func (s *state) runsInline(inline bool) bool {
	return s.policy == threadRun || inline && s.perCall()
}

// threadRun is the policy of a handle made by Run: every call runs on the
// thread of Run's function, locked by Run, and holding a call slot.
const threadRun ThreadPolicy = -1

// onOwner reports whether the caller runs on the thread of a threadRun
// handle's function. Where thread ids are unknown (all systems but Linux) it
// cannot tell, and reports true. The caller holds s.mu, since the owner's
// thread changes across a fail delay.
func (s *state) onOwner() bool {
	id, ok := threadID()
	return !ok || id == s.owner
}

// execOwned runs a call of a threadRun handle on the caller's thread, which
// must be the handle's (checked says the caller checked it already).
func (s *state) execOwned(ctx context.Context, checked bool, run func()) error {
	if !checked && !s.onOwner() {
		return ErrNotOwner
	}
	if !s.hold.held() {
		if err := s.takeSlot(ctx); err != nil {
			return err
		}
	}
	// No yieldIfDue here: Gosched on a locked thread parks it and wakes
	// another; Run yields before it locks the thread, once per transaction.
	run()
	return nil
}

// perCall reports whether the next call runs on a thread of its own rather
// than on the handle's dedicated worker.
func (s *state) perCall() bool {
	return s.policy == ThreadPerCall && !s.dirtyTID
}

// attach gives the handle its dedicated worker, and the call slot that comes
// with it, if it has none. The caller holds s.mu.
func (s *state) attach(ctx context.Context) error {
	if s.w != nil {
		return nil
	}
	if err := s.takeSlot(ctx); err != nil {
		return err
	}
	s.w = acquireWorker()
	return nil
}

// detach gives the handle's worker and its slot back. The caller holds s.mu.
func (s *state) detach() {
	if s.w != nil {
		s.w.release(!s.dirtyTID)
		s.w = nil
		s.hold.release()
	}
}

// enterCallback marks the start of a callback of s that may run user code, on
// the thread of s's running call: until exitCallback, methods of s called on
// this thread return ErrReentrant instead of deadlocking.
func (s *state) enterCallback() {
	if id, ok := threadID(); ok {
		s.callTID.Store(id)
	}
	s.inCallback.Store(true)
}

func (s *state) exitCallback() {
	s.inCallback.Store(false)
	s.callTID.Store(0)
}

// onCallThread reports whether the caller runs on the thread of a callback of
// s, that is, inside it.
func onCallThread(s *state) bool {
	id, ok := threadID()
	return ok && id != 0 && s.callTID.Load() == id
}

// yieldEvery bounds how long a goroutine that calls into libpam back to back
// runs between two visits to the scheduler. Go's sysmon takes the P of a
// goroutine whose time slice passed 10 ms while it is in a foreign call, and a
// goroutine whose calls follow one another never ends its slice by blocking:
// its P is then taken again and again, each time waking another thread, whose
// presence on the other CPU makes every munmap of libpam's dlclose send a TLB
// shootdown. Yielding now and then ends the slice and stops it.
const yieldEvery = 2 * time.Millisecond

// epoch and lastYield time the yields of yieldIfDue.
var (
	epoch     = time.Now()
	lastYield atomic.Int64
)

// yieldIfDue yields the processor if no call into libpam has done so for
// yieldEvery. It runs before each call made on the caller's own thread.
func yieldIfDue() {
	now := int64(time.Since(epoch))
	if last := lastYield.Load(); now-last >= int64(yieldEvery) && lastYield.CompareAndSwap(last, now) {
		runtime.Gosched()
	}
}

// abandonGrace is how long exec still waits for a PAM call after its context
// ended, since a conversation that sees the context end makes the module
// return almost at once.
const abandonGrace = 20 * time.Millisecond

// exec runs f, a PAM call, on the thread the policy chooses and waits for it.
// inline allows running it on the caller's thread; it must be false when ctx
// can end, since an inline call cannot be abandoned. When ctx ends first the
// handle is abandoned: exec returns an error wrapping ErrClosed and the
// context's cause, the call goes on in C, and the transaction is ended when it
// returns. The caller holds s.mu.
func (s *state) exec(ctx context.Context, inline bool, run func()) error {
	if s.policy == threadRun {
		return s.execOwned(ctx, false, run)
	}
	if s.perCall() {
		if err := s.takeSlot(ctx); err != nil {
			return err
		}
		if inline {
			yieldIfDue()
			defer s.hold.release()
			runLocked(run)
			return nil
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer s.hold.release()
			runLocked(run)
		}()
		return s.await(ctx, done, nil)
	}
	if err := s.attach(ctx); err != nil {
		return err
	}
	s.w.work <- run
	return s.await(ctx, s.w.done, s.w)
}

// runLocked runs run with the calling goroutine locked to its thread. The
// unlock is deferred, so that even a goroutine that ends inside run leaves
// the lock count as it found it.
func runLocked(run func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	run()
}

// takeSlot takes a call slot for a call of s. The caller holds s.mu, so
// Close, which waits for s.mu, must be able to end the wait: a context that
// Close cannot cancel (an inline operation's, or a short call's) is replaced
// by one it can before waiting.
func (s *state) takeSlot(ctx context.Context) error {
	if s.hold.tryTake(ctx) {
		return nil
	}
	switch {
	case s.opLazy:
		ctx = s.opContext()
	case ctx.Done() == nil:
		c, done := s.withOp(ctx)
		defer done()
		ctx = c
	}
	return s.hold.take(ctx, s.slotWait)
}

// await waits for a call started by exec, abandoning the handle if ctx ends
// first. w is the dedicated worker running the call, or nil.
func (s *state) await(ctx context.Context, done <-chan struct{}, w *worker) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// A conversation that fails because the context ended lets the
		// module return at once; prefer its result to abandoning.
		select {
		case <-done:
			return nil
		case <-time.After(abandonGrace):
		}
	}
	// From here on the caller must not touch what the call's thread uses:
	// the call is still running there. The goroutine below owns the worker
	// and its slot, and ends the transaction.
	s.abandoned.Store(true)
	s.closed = fmt.Errorf("%w: abandoned while a PAM call was running: %w", ErrClosed, context.Cause(ctx))
	pamh, id := s.pamh, s.id
	abort, _ := s.lib.NativeCode(libpam.CodeAbort)
	s.w = nil
	// The call's slot goes back to the pool now, counted as abandoned, so
	// that the next caller need not wait for the module to return.
	s.hold.abandon()
	go func() {
		<-done
		end := func() { s.lib.End(pamh, abort) }
		if w != nil {
			w.run(end)
			// The thread's state after an abandoned call is unknown.
			held.Add(-1)
			close(w.work)
			s.hold.release()
		} else {
			runtime.LockOSThread()
			end()
			runtime.UnlockOSThread()
		}
		libpam.Unregister(id)
	}()
	return s.closed
}

// endCall runs pam_end for Close: on the dedicated worker if the handle has
// one, else on a thread locked for the call. pam_end takes no call slot, so
// that closing never waits for one, and it starts no thread unless the
// transaction's state is on one.
func (s *state) endCall(run func()) {
	switch {
	case s.w != nil:
		s.w.run(run)
	case !s.dirtyTID:
		// ThreadPerCall, or a handle that gave its worker back during a
		// fail delay: no thread holds state of the transaction, so the
		// caller's own serves, without a new thread.
		yieldIfDue()
		runtime.LockOSThread()
		run()
		runtime.UnlockOSThread()
	default:
		w := acquireWorker()
		w.run(run)
		w.release(!s.dirtyTID)
	}
}
