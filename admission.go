package pam

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// DefaultMaxInFlight is the default limit of call slots: OS threads doing
// PAM work in the process, each either running a call (a module may block in
// C) or dedicated to a handle between its calls (ThreadPerHandle). Go stops a
// program that reaches 10,000 threads; the limit keeps a busy server far from
// that.
const DefaultMaxInFlight = 1024

// slots is a FIFO counting semaphore whose size can change while calls wait.
var slots = struct {
	sync.Mutex
	limit   int
	used    int
	waiters list.List // of chan struct{}, closed when the waiter is given a slot
}{limit: DefaultMaxInFlight}

// SetMaxInFlight sets how many call slots the process has (n < 1 means
// DefaultMaxInFlight). A ThreadPerHandle handle holds a slot with its
// dedicated thread, from Start to Close, except while it waits out a fail
// delay; a ThreadPerCall handle holds one for each call; Run holds one from
// the start of the transaction to its end, all of its function's own work
// included (so a Run or Start nested in the function needs a second slot),
// except while a fail delay is waited out. Past the limit Start
// and calls wait for a free slot, in order of arrival, bounded by their
// context, and fail with an error wrapping the context's error if that ends
// first. A call waiting for an answer in its conversation holds its slot;
// Close never waits for one. Raising the limit lets waiting callers in at
// once; lowering it lets current holders finish.
func SetMaxInFlight(n int) {
	if n < 1 {
		n = DefaultMaxInFlight
	}
	slots.Lock()
	slots.limit = n
	grantLocked()
	slots.Unlock()
}

// MaxInFlight returns the current limit of PAM calls running at once.
func MaxInFlight() int {
	slots.Lock()
	defer slots.Unlock()
	return slots.limit
}

// grantLocked hands free slots to the oldest waiters.
func grantLocked() {
	for slots.used < slots.limit && slots.waiters.Len() > 0 {
		ch := slots.waiters.Remove(slots.waiters.Front()).(chan struct{})
		slots.used++
		close(ch)
	}
}

func releaseSlot() {
	slots.Lock()
	slots.used--
	grantLocked()
	slots.Unlock()
}

// tryAcquireSlot takes a call slot if one is free and nobody waits for one.
func tryAcquireSlot() bool {
	slots.Lock()
	defer slots.Unlock()
	if slots.used < slots.limit && slots.waiters.Len() == 0 {
		slots.used++
		return true
	}
	return false
}

// acquireSlot takes a call slot; the caller gives it back with releaseSlot.
func acquireSlot(ctx context.Context) error {
	slots.Lock()
	if slots.used < slots.limit && slots.waiters.Len() == 0 {
		slots.used++
		slots.Unlock()
		return nil
	}
	ch := make(chan struct{})
	elem := slots.waiters.PushBack(ch)
	limit := slots.limit
	slots.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	slots.Lock()
	select {
	case <-ch:
		// Granted while giving up: pass the slot on.
		slots.used--
		grantLocked()
	default:
		slots.waiters.Remove(elem)
	}
	slots.Unlock()
	return fmt.Errorf("waiting for one of %d PAM call slots: %w", limit, unprefixed(context.Cause(ctx)))
}

// inFlight reports the number of PAM calls holding a slot; tests use it.
func inFlight() int {
	slots.Lock()
	defer slots.Unlock()
	return slots.used
}
