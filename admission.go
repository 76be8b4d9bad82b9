package pam

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxInFlight is the default limit of the process's call slots: OS
// threads doing PAM work, each either running a call (a module may block in
// C) or dedicated to a handle between its calls. Go stops a program that
// reaches 10,000 threads; the limit keeps a busy server far from that.
const DefaultMaxInFlight = 1024

// ErrNoSlot is the error (matched with errors.Is) of a Start, Run or call
// that got no call slot: none was free and Config.SlotWait said not to wait,
// or the wait ended (Config.SlotWait passed, or the context ended, whose
// error the returned error wraps as well). No PAM work was done for it: a
// server answers "busy" (HTTP 503) and the client may retry.
var ErrNoSlot = errors.New("pam: no PAM call slot free")

// NoSlotWait, as Config.SlotWait, makes Start, Run and calls fail at once
// with ErrNoSlot when no call slot is free, instead of queueing for one.
const NoSlotWait time.Duration = -1

// Slots is a pool of call slots: it bounds how many OS threads do PAM work
// for the transactions that use it (Config.Slots), and queues the others in
// order of arrival. By default a handle holds a slot for each call, and from
// its first credential or session call on one with its dedicated thread,
// until Close; a ThreadPerHandle handle holds one with its dedicated thread
// from Start to Close, except while it waits out a fail delay; Run holds one from the start
// of the transaction to its end, all of its function's own work included (so
// a Run or Start nested in the function needs a second slot), except while a
// fail delay is waited out. A call waiting for an answer in its conversation
// holds its slot; Close never waits for one.
//
// A call abandoned because its context ended while a module was blocked in C
// keeps running on its thread until the module returns. It gives its slot
// back at once and is counted apart (Abandoned), up to as many abandoned
// calls as the limit, so that requests whose deadlines passed do not starve
// the next ones; past that, an abandoned call keeps its slot until it
// returns. The pool thus bounds threads at twice its limit.
//
// The process has one pool, DefaultSlots, which SetMaxInFlight sizes; a
// program or a test can make others with NewSlots.
type Slots struct {
	mu         sync.Mutex
	limit      int
	maxWaiting int // < 0: no bound
	used       int
	abandoned  int
	waiters    list.List // of chan struct{}, closed when the waiter is given a slot

	// With trace on (tests only): slot-time in use, the number of grants,
	// and when used last changed.
	trace          bool
	busy           time.Duration
	grants         int
	lastUsedChange time.Time
}

// add changes the count of slots in use; the caller holds p.mu.
func (p *Slots) add(n int) {
	if p.trace {
		now := time.Now()
		p.busy += time.Duration(p.used) * now.Sub(p.lastUsedChange)
		p.lastUsedChange = now
		if n > 0 {
			p.grants++
		}
	}
	p.used += n
}

var defaultSlots = Slots{limit: DefaultMaxInFlight, maxWaiting: -1}

// DefaultSlots returns the process's pool of call slots, which transactions
// whose Config names none use.
func DefaultSlots() *Slots { return &defaultSlots }

// NewSlots returns a pool of n call slots (n < 1 means DefaultMaxInFlight).
func NewSlots(n int) *Slots {
	p := &Slots{maxWaiting: -1}
	p.SetLimit(n)
	return p
}

// SetMaxWaiting bounds how many callers may wait for one of p's slots at
// once (n < 0, the default, means no bound): past it a caller fails at once
// with ErrNoSlot. A server that knows how long a login takes can size the
// queue so that whoever waits is served before its deadline, and everyone
// else hears "busy" without delay.
func (p *Slots) SetMaxWaiting(n int) {
	p.mu.Lock()
	p.maxWaiting = max(n, -1)
	p.mu.Unlock()
}

// SetLimit sets how many slots p has (n < 1 means DefaultMaxInFlight).
// Raising the limit lets waiting callers in at once; lowering it lets current
// holders finish.
func (p *Slots) SetLimit(n int) {
	if n < 1 {
		n = DefaultMaxInFlight
	}
	p.mu.Lock()
	p.limit = n
	p.grantLocked()
	p.mu.Unlock()
}

// Limit returns how many slots p has.
func (p *Slots) Limit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// InUse returns how many of p's slots are held now.
func (p *Slots) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// Waiting returns how many callers wait for one of p's slots now.
func (p *Slots) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters.Len()
}

// Abandoned returns how many abandoned calls still run in C after giving
// their slot back.
func (p *Slots) Abandoned() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandoned
}

// SetMaxInFlight sets how many slots the process's pool, DefaultSlots, has
// (n < 1 means DefaultMaxInFlight). See Slots.
func SetMaxInFlight(n int) { defaultSlots.SetLimit(n) }

// MaxInFlight returns the limit of the process's pool of call slots.
func MaxInFlight() int { return defaultSlots.Limit() }

// grantLocked hands free slots to the oldest waiters.
func (p *Slots) grantLocked() {
	for p.used < p.limit && p.waiters.Len() > 0 {
		ch := p.waiters.Remove(p.waiters.Front()).(chan struct{})
		p.add(1)
		close(ch)
	}
}

func (p *Slots) release() {
	p.mu.Lock()
	p.add(-1)
	p.grantLocked()
	p.mu.Unlock()
}

// acquire takes a slot, waiting for one as wait says (0: as long as ctx
// allows; NoSlotWait: not at all); the caller gives it back with release.
func (p *Slots) acquire(ctx context.Context, wait time.Duration) error {
	if ctx.Err() != nil {
		// A caller that has given up already takes no slot from those
		// still waiting.
		return fmt.Errorf("%w: the context ended: %w", ErrNoSlot, unprefixed(context.Cause(ctx)))
	}
	p.mu.Lock()
	if p.used < p.limit && p.waiters.Len() == 0 {
		p.add(1)
		p.mu.Unlock()
		return nil
	}
	limit := p.limit
	if wait < 0 || p.maxWaiting >= 0 && p.waiters.Len() >= p.maxWaiting {
		n := p.waiters.Len()
		p.mu.Unlock()
		return fmt.Errorf("%w: all %d in use, %d callers waiting", ErrNoSlot, limit, n)
	}
	ch := make(chan struct{})
	elem := p.waiters.PushBack(ch)
	p.mu.Unlock()
	var expired <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	var cause error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		cause = context.Cause(ctx)
	case <-expired:
		cause = fmt.Errorf("waited %v (Config.SlotWait)", wait)
	}
	p.mu.Lock()
	select {
	case <-ch:
		// Granted while giving up: pass the slot on.
		p.add(-1)
		p.grantLocked()
	default:
		p.waiters.Remove(elem)
	}
	p.mu.Unlock()
	return fmt.Errorf("%w: waiting for one of %d: %w", ErrNoSlot, limit, unprefixed(cause))
}

// The states of a slotHold.
const (
	slotFree int32 = iota
	slotHeld
	slotAbandoned // given back to the pool while the call runs on
)

// slotHold is the slot a transaction holds, at most one at a time. Its state
// changes atomically, since an abandoned call gives it back from another
// goroutine than the one that ends it.
type slotHold struct {
	p  *Slots // the transaction's pool, set once when it begins
	st atomic.Int32
}

// take takes a slot of the transaction's pool, waiting as wait says.
func (h *slotHold) take(ctx context.Context, wait time.Duration) error {
	if err := h.p.acquire(ctx, wait); err != nil {
		return err
	}
	h.st.Store(slotHeld)
	return nil
}

// tryTake takes a slot if one is free and nobody waits, unless ctx has
// ended.
func (h *slotHold) tryTake(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	p := h.p
	p.mu.Lock()
	ok := p.used < p.limit && p.waiters.Len() == 0
	if ok {
		p.add(1)
	}
	p.mu.Unlock()
	if ok {
		h.st.Store(slotHeld)
	}
	return ok
}

// held reports whether the transaction holds a slot it has not given back.
func (h *slotHold) held() bool { return h.st.Load() == slotHeld }

// release gives the slot back when the call (or the handle's thread) is done
// with it.
func (h *slotHold) release() {
	switch {
	case h.st.CompareAndSwap(slotHeld, slotFree):
		h.p.release()
	case h.st.CompareAndSwap(slotAbandoned, slotFree):
		h.p.mu.Lock()
		h.p.abandoned--
		h.p.mu.Unlock()
	}
}

// abandon gives the slot of an abandoned call back to the pool while the
// call runs on, if the pool's account of abandoned calls has room.
func (h *slotHold) abandon() {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.abandoned < p.limit && h.st.CompareAndSwap(slotHeld, slotAbandoned) {
		p.add(-1)
		p.abandoned++
		p.grantLocked()
	}
}

// inFlight reports the number of the process's slots held; tests use it.
func inFlight() int { return defaultSlots.InUse() }
