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
//
// Where each call runs is decided in one place (placement.place), by the
// policy and the call's context; the package doc has the table.
type ThreadPolicy int

const (
	// ThreadDefault, the zero value: each call runs on a thread locked for
	// that call, the caller's own when the call's context cannot end (no
	// hand-off at all), else a new goroutine's, so that the call can be
	// abandoned. From the handle's first credential or session call on,
	// whose modules may leave state on the thread, every call of the
	// handle runs on one dedicated thread, which no other handle ever uses
	// and which ends with the transaction.
	ThreadDefault ThreadPolicy = iota

	// ThreadPerHandle, the strict mode, runs every call of the handle on
	// one OS thread locked for the handle's life, whichever goroutine
	// calls. Each call is a hand-off to that thread, which costs two thread
	// switches. Run gives the same guarantee without the hand-offs, for a
	// transaction that one goroutine runs from start to end.
	ThreadPerHandle
)

// threadRun is the policy of a handle made by Run: every call runs on the
// thread of Run's function, locked by Run, and holding a call slot.
const threadRun ThreadPolicy = -1

// defaultThreads is the policy of a Config that names none. Only tests change
// it, to run the whole suite under the strict policy as well; threadCaller
// names ThreadDefault's placement whatever defaultThreads says, for the tests
// of that placement.
var defaultThreads = ThreadDefault

const threadCaller ThreadPolicy = -2

// placement is the part of a transaction's state that says where its calls
// run. The caller of its methods holds the state's mu.
type placement struct {
	policy   ThreadPolicy // ThreadDefault, ThreadPerHandle or threadRun
	w        *worker      // the dedicated worker, while the handle has one
	owner    int64        // threadRun: the thread of Run's function; 0 if unknown, -1 during a fail delay
	dirtyTID bool         // a credential or session call ran: the transaction's thread may hold its state
	hold     slotHold     // the call slot the transaction holds, if any
	slotWait time.Duration
}

// A callKind is what place decides for.
type callKind int

const (
	callStart callKind = iota // pam_start: never abandoned
	callOp                    // an operation or a short call
	callEnd                   // pam_end: takes no slot, never abandoned
)

// A site is where a call runs.
type site int

const (
	siteCaller    site = iota // the caller's own thread, locked for the call
	siteOwner                 // Run: the thread of Run's function, already locked
	siteGoroutine             // a new goroutine's thread, locked for the call; the caller can abandon it
	siteWorker                // the handle's dedicated worker
)

// place decides where a call runs. It is the only function that reads the
// policy to decide it; cancellable says that the call's context can end.
func (p *placement) place(k callKind, cancellable bool) site {
	switch {
	case p.policy == threadRun:
		return siteOwner
	case k == callEnd:
		// A handle with a worker ends there; one without (ThreadDefault,
		// or a strict handle that gave its worker back during a fail
		// delay) holds no thread state, and its caller's thread serves.
		if p.w != nil || p.dirtyTID {
			return siteWorker
		}
		return siteCaller
	case p.policy == ThreadPerHandle || p.dirtyTID:
		return siteWorker
	case cancellable && k == callOp:
		return siteGoroutine
	}
	return siteCaller
}

// lazy reports whether a call at site runs where nobody can abandon it, so
// that its context need be made cancellable by Close only when a
// conversation or a fail delay first needs it.
func (st site) lazy() bool { return st == siteCaller || st == siteOwner }

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

// acquireWorker returns a worker for a handle, from the idle pool if it may.
// fresh asks for a thread that has served no handle yet: the dedicated thread
// of a ThreadDefault handle serves that handle only.
func acquireWorker(fresh bool) *worker {
	held.Add(1)
	idle.Lock()
	if n := len(idle.ws); n > 0 && !fresh {
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

// onOwner reports whether the caller runs on the thread of a threadRun
// handle's function. Where thread ids are unknown (all systems but Linux) it
// cannot tell, and reports true. The caller holds s.mu, since the owner's
// thread changes across a fail delay.
func (s *state) onOwner() bool {
	id, ok := threadID()
	return !ok || id == s.owner
}

// checkOwner returns ErrNotOwner when a call of a threadRun handle comes from
// another thread than its function's. The caller holds s.mu.
func (s *state) checkOwner() error {
	if s.policy == threadRun && !s.onOwner() {
		return ErrNotOwner
	}
	return nil
}

// execOwned runs a call of a threadRun handle on the caller's thread, which
// the caller checked is the handle's (for callStart, the thread becomes it).
func (s *state) execOwned(ctx context.Context, k callKind, run func()) error {
	switch k {
	case callStart:
		// The slot is held until Run ends. The thread is locked only after
		// the wait, so that nothing can keep it waiting while locked; it
		// stays locked if the transaction began (Run unlocks it).
		if err := s.takeSlot(ctx); err != nil {
			return err
		}
		yieldIfDue()
		beforeLock(k)
		runtime.LockOSThread()
		s.owner, _ = threadID()
		run()
		if s.opErr != nil {
			runtime.UnlockOSThread()
		}
		return nil
	case callOp:
		if !s.hold.held() {
			if err := s.takeSlot(ctx); err != nil {
				return err
			}
		}
	}
	// No yieldIfDue here: Gosched on a locked thread parks it and wakes
	// another; Run yields before it locks the thread, once per transaction.
	run()
	return nil
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
	s.w = acquireWorker(s.policy != ThreadPerHandle)
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

// exec runs run, a PAM call of kind k, where place puts it, and waits for
// it. The caller holds s.mu and, for a threadRun handle, checked its owner.
func (s *state) exec(ctx context.Context, k callKind, run func()) error {
	return s.execAt(s.place(k, ctx.Done() != nil), k, ctx, run)
}

// execAt runs run at the site place chose. Every call but pam_end takes a
// call slot first (a dedicated worker holds one while the handle has it).
// When ctx ends before a call that can be abandoned (an operation on a new
// goroutine or on the worker), the handle is abandoned: execAt returns an
// error wrapping ErrClosed and the context's cause, the call goes on in C,
// and the transaction is ended when it returns. pam_start and pam_end are
// never abandoned.
func (s *state) execAt(at site, k callKind, ctx context.Context, run func()) error {
	switch at {
	case siteOwner:
		return s.execOwned(ctx, k, run)
	case siteCaller:
		if k != callEnd {
			if err := s.takeSlot(ctx); err != nil {
				return err
			}
			defer s.hold.release()
		}
		yieldIfDue()
		beforeLock(k)
		runLocked(run)
		return nil
	case siteGoroutine:
		if err := s.takeSlot(ctx); err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer s.hold.release()
			runLocked(run)
		}()
		return s.await(ctx, done, nil)
	}
	if k == callEnd {
		w := s.w
		if w == nil {
			// Not reached: a handle whose thread holds state keeps its
			// worker. A fresh, retired thread is the safe choice.
			w = acquireWorker(true)
			defer w.release(false)
		}
		w.run(run)
		return nil
	}
	if err := s.attach(ctx); err != nil {
		return err
	}
	if k == callStart {
		beforeLock(k)
		s.w.run(run)
		return nil
	}
	s.w.work <- run
	return s.await(ctx, s.w.done, s.w)
}

// beforeLock does what a call of kind k needs done before its thread is
// locked, where waiting for a mutex holds no OS thread: for pam_start, the
// module cache's look for changed files.
func beforeLock(k callKind) {
	if k == callStart {
		libpam.BeforeStart()
	}
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
	s.closed = fmt.Errorf("%w: abandoned while a PAM call was running: %w", ErrClosed, unprefixed(context.Cause(ctx)))
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

// leaveForDelay gives the transaction's thread back, with its slot, while a
// failed call's fail delay is waited out, so that no thread is held by a
// delay: unless a credential or session call ran (whose modules may leave
// state on the thread), auth, account and password modules restore what they
// change within a call, and the transaction may go on with another thread.
// The returned function takes them again, where the policy needs it.
func (s *state) leaveForDelay() (resume func()) {
	switch {
	case s.dirtyTID:
		return func() {}
	case s.policy == threadRun:
		s.unbind()
		return s.rebind
	}
	s.detach() // a strict handle's worker; the next call takes one again
	return func() {}
}

// unbind gives a threadRun handle's thread and call slot back while its
// goroutine waits out a fail delay; rebind takes them again.
func (s *state) unbind() {
	// Until rebind, no thread is the owner's: a goroutine that the old
	// thread runs meanwhile must not pass for Run's function.
	s.owner = -1
	runtime.UnlockOSThread()
	s.hold.release()
}

func (s *state) rebind() {
	runtime.LockOSThread()
	s.owner, _ = threadID()
	// The next call takes a slot again (execOwned); ending the transaction
	// needs none, so a failed login that returns at once does not queue for
	// one.
}
