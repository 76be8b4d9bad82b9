package pam

import (
	"context"
	"fmt"
	"sync"
)

// DefaultMaxInFlight is the default limit of PAM calls running at once in the
// process. Each running call holds an OS thread (a module may block in C), and
// Go stops a program that reaches 10,000 threads; the limit keeps a busy
// server far from that.
const DefaultMaxInFlight = 1024

var slots struct {
	sync.Mutex
	limit int
	ch    chan struct{} // a token per call in flight
}

func init() { SetMaxInFlight(DefaultMaxInFlight) }

// SetMaxInFlight sets how many PAM calls may run at once in this process
// (n < 1 means DefaultMaxInFlight). Past the limit a call waits for a free
// slot, bounded by its context, and fails with an error wrapping the
// context's error if that ends first. A call waiting for an answer in its
// conversation holds its slot. Calls already running keep theirs; the new
// limit applies to calls that start after it is set.
func SetMaxInFlight(n int) {
	if n < 1 {
		n = DefaultMaxInFlight
	}
	slots.Lock()
	slots.limit = n
	slots.ch = make(chan struct{}, n)
	slots.Unlock()
}

// MaxInFlight returns the current limit of PAM calls running at once.
func MaxInFlight() int {
	slots.Lock()
	defer slots.Unlock()
	return slots.limit
}

// acquireSlot takes a call slot and returns the function that gives it back.
func acquireSlot(ctx context.Context) (func(), error) {
	slots.Lock()
	ch := slots.ch
	slots.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
	}
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d PAM call slots: %w", cap(ch), context.Cause(ctx))
	}
}

// inFlight reports the number of PAM calls running now; tests use it.
func inFlight() int {
	slots.Lock()
	defer slots.Unlock()
	return len(slots.ch)
}
