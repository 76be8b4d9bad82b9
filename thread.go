package pam

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A worker is a goroutine locked to one OS thread for the life of the
// transactions it serves: every PAM call of a handle, and every callback those
// calls make, runs on it. libpam allows one handle per thread at a time, and
// modules may leave per-thread state (file-system IDs, SELinux contexts) that
// belongs to the transaction that set it.
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
