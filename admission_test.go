//go:build linux

package pam_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// holdSlot runs a transaction on pool whose conversation blocks until the
// returned function is called, so that it holds one of pool's slots whatever
// the thread policy; the function waits for the transaction's end.
func holdSlot(t *testing.T, st *pamtest.Stack, svc string, pool *pam.Slots) func() {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	conv := pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
		close(entered)
		<-release
		return nil, errors.New("released")
	})
	done := make(chan error, 1)
	go func() {
		done <- pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv, Slots: pool},
			func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	}()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("the slot holder ended early: %v", err)
	}
	return func() {
		close(release)
		<-done
	}
}

// TestNoSlot: a transaction that cannot get a slot of a full per-Config pool
// fails with ErrNoSlot (at once with NoSlotWait, after SlotWait, or when its
// context ends), leaves nothing queued, and touches neither the pool's count
// nor the process's.
func TestNoSlot(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("slots", promptLine(t), "account required pam_permit.so")
	pool := pam.NewSlots(1)
	processInUse := pam.DefaultSlots().InUse()
	if pool.Limit() != 1 || pool.InUse() != 0 {
		t.Fatalf("a new pool of 1: limit %d, in use %d", pool.Limit(), pool.InUse())
	}
	done := holdSlot(t, st, svc, pool)
	if n := pool.InUse(); n != 1 {
		t.Errorf("the pool has %d slots in use, want 1", n)
	}
	if n := pam.DefaultSlots().InUse(); n != processInUse {
		t.Errorf("a per-Config pool changed the process's slots in use: %d, was %d", n, processInUse)
	}
	login := func(ctx context.Context, wait time.Duration) error {
		return pam.Run(ctx, pam.Config{Service: svc, User: "bob", ConfDir: st.Dir(), Conv: pam.Answers([]byte("pw")),
			Slots: pool, SlotWait: wait}, func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	}
	if err := login(context.Background(), pam.NoSlotWait); !errors.Is(err, pam.ErrNoSlot) {
		t.Errorf("NoSlotWait with the pool full: %v, want ErrNoSlot", err)
	}
	if h, err := pam.Start(pam.Config{Service: svc, User: "bob", ConfDir: st.Dir(), Conv: pam.Answers([]byte("pw")),
		Slots: pool, SlotWait: pam.NoSlotWait}); err == nil {
		// A policy that takes slots per call: the call is refused.
		err = h.Authenticate(context.Background(), 0)
		h.Close()
		if !errors.Is(err, pam.ErrNoSlot) {
			t.Errorf("Start/Authenticate with NoSlotWait and the pool full: %v, want ErrNoSlot", err)
		}
	} else if !errors.Is(err, pam.ErrNoSlot) {
		t.Errorf("Start with NoSlotWait and the pool full: %v, want ErrNoSlot", err)
	}
	if err := login(context.Background(), time.Millisecond); !errors.Is(err, pam.ErrNoSlot) {
		t.Errorf("SlotWait 1ms with the pool full: %v, want ErrNoSlot", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := login(ctx, 0); !errors.Is(err, pam.ErrNoSlot) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting until the deadline: %v, want ErrNoSlot and DeadlineExceeded", err)
	}
	if n := pool.Waiting(); n != 0 {
		t.Errorf("%d callers still queued after giving up", n)
	}
	done()
	if n := pool.InUse(); n != 0 {
		t.Errorf("%d slots in use after the holder ended", n)
	}
	if err := login(context.Background(), pam.NoSlotWait); err != nil {
		t.Errorf("a login with a free slot: %v", err)
	}
}

// TestSlotWaitGranted: a caller whose SlotWait is long enough gets the slot
// the holder gives back.
func TestSlotWaitGranted(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("slots", promptLine(t), "account required pam_permit.so")
	pool := pam.NewSlots(1)
	done := holdSlot(t, st, svc, pool)
	errc := make(chan error, 1)
	go func() {
		errc <- pam.Run(context.Background(), pam.Config{Service: svc, User: "bob", ConfDir: st.Dir(),
			Conv: pam.Answers([]byte("pw")), Slots: pool, SlotWait: time.Hour},
			func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	}()
	waitUntil(t, func() bool { return pool.Waiting() == 1 }, func() string { return "the second login never queued" })
	done()
	if err := <-errc; err != nil {
		t.Fatalf("the queued login: %v", err)
	}
}

// TestAbandonedCallsAccounted: a call abandoned while its module sleeps in C
// gives its slot back at once and is counted apart, so the next request is
// served while the module still runs; requests whose context has already
// ended take no slot; past the pool's limit of abandoned calls, an abandoned
// call keeps its slot until its module returns.
func TestAbandonedCallsAccounted(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	tids := st.File("tids", "")
	slow := st.Service("slow", "auth required "+mod+" tidfile="+tids+" sleepms=3000")
	quick := st.Service("quick", "auth required pam_permit.so")
	pool := pam.NewSlots(1)
	run := func(ctx context.Context, svc string) error {
		return pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), Slots: pool,
			SlotWait: pam.NoSlotWait}, func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	}
	abandonSlow := func(calls int) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- run(ctx, slow) }()
		waitUntil(t, func() bool { b, _ := os.ReadFile(tids); return len(b) > 0 && countLines(b) >= calls },
			func() string { return "the slow module never started" })
		cancel()
		if err := <-errc; !errors.Is(err, pam.ErrClosed) {
			t.Fatalf("the abandoned call returned %v, want ErrClosed", err)
		}
	}
	abandonSlow(1)
	// The module sleeps on for about 3 s: far more than the checks below
	// take, even on a loaded machine.
	if in, ab := pool.InUse(), pool.Abandoned(); in != 0 || ab != 1 {
		t.Errorf("after abandoning: %d slots in use, %d abandoned; want 0 and 1", in, ab)
	}
	// A flood of requests that have already given up takes no slot.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 {
		if err := run(gone, quick); !errors.Is(err, pam.ErrNoSlot) {
			t.Fatalf("a request whose context had ended: %v, want ErrNoSlot", err)
		}
	}
	if err := run(context.Background(), quick); err != nil {
		t.Errorf("the request after the abandoned one: %v", err)
	}
	if ab := pool.Abandoned(); ab != 1 {
		t.Errorf("the abandoned call ended before the check: %d abandoned (the test needs a slower module)", ab)
	}
	// A second abandoned call is past the pool's limit of 1: it keeps its
	// slot.
	abandonSlow(2)
	if in, ab := pool.InUse(), pool.Abandoned(); in != 1 || ab != 1 {
		t.Errorf("past the limit of abandoned calls: %d in use, %d abandoned; want 1 and 1", in, ab)
	}
	waitUntil(t, func() bool { return pool.InUse() == 0 && pool.Abandoned() == 0 }, func() string {
		return fmt.Sprintf("after the modules returned: %d in use, %d abandoned", pool.InUse(), pool.Abandoned())
	})
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestOverload is issue 14's overload case: 120 requests, each with a 500 ms
// deadline, arrive in a steady stream at a server with 2 call slots whose
// module takes 200 ms. The server lets 2 requests wait for a slot
// (Slots.SetMaxWaiting), which they get in time to finish by their deadline,
// and answers "busy" on ErrNoSlot. Busy answers must not wait for a slot:
// each returns before any call in flight finished, or within 500 ms (10
// times the 50 ms the issue asks for).
// The successes must be at least 80 % of what the capacity allows, computed
// from the run itself: the most requests that 2 slots could have served by
// their deadlines, given the observed arrival times and the mean time a
// request held its slot (the pool's slot-time in use over its grants, which
// counts what a loaded machine adds to each 200 ms: waking the waiter,
// pam_start, pam_end).
func TestOverload(t *testing.T) {
	const (
		requests = 120
		slotsN   = 2
		deadline = 500 * time.Millisecond
		every    = 20 * time.Millisecond
		busyMax  = 500 * time.Millisecond
	)
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("overload", "auth required "+mod+" sleepms=200")
	pool := pam.NewSlots(slotsN)
	// A waiter starts within one call's time, and ends within two: by
	// its deadline.
	pool.SetMaxWaiting(slotsN)
	pam.TraceSlots(pool)
	var finished atomic.Int64 // requests that held a slot and returned
	type result struct {
		at, took, fn   time.Duration
		err            error
		busyWaited     bool
		finishedDuring int64
	}
	results := make([]result, requests)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range requests {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			before := finished.Load()
			t0 := time.Now()
			var fn atomic.Int64 // written by fn, which may outlive an abandoned Run
			err := pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
				Slots: pool},
				func(ctx context.Context, h *pam.Handle) error {
					t1 := time.Now()
					err := h.Authenticate(ctx, 0)
					fn.Store(int64(time.Since(t1)))
					return err
				})
			took := time.Since(t0)
			r := result{at: t0.Sub(start), took: took, fn: time.Duration(fn.Load()), err: err}
			if errors.Is(err, pam.ErrNoSlot) {
				r.finishedDuring = finished.Load() - before
				r.busyWaited = r.finishedDuring != 0 && took > busyMax
			} else {
				finished.Add(1)
			}
			results[i] = r
		})
	}
	wg.Wait()
	var ok, busy, other int
	var held []time.Duration
	var arrivals []time.Duration
	var slowestBusy time.Duration
	for i, r := range results {
		arrivals = append(arrivals, r.at)
		switch {
		case r.err == nil:
			ok++
			held = append(held, r.fn)
		case errors.Is(r.err, pam.ErrNoSlot):
			busy++
			slowestBusy = max(slowestBusy, r.took)
			if r.busyWaited {
				t.Errorf("request %d: the busy answer took %v while %d calls finished: it waited for a slot", i, r.took, r.finishedDuring)
			}
		default:
			other++
			t.Logf("request %d: %v", i, r.err)
		}
	}
	if ok == 0 {
		t.Fatalf("no request succeeded (%d busy, %d other)", busy, other)
	}
	slices.Sort(held)
	busyTime, grants := pam.SlotTrace(pool)
	d := busyTime / time.Duration(grants)
	capacity := servable(arrivals, slotsN, d, deadline)
	t.Logf("%d served, %d busy (slowest busy answer %v), %d other; a served request's Authenticate took %v (median), "+
		"a slot was held %v (mean of %d); capacity %d", ok, busy, slowestBusy, other, held[len(held)/2], d, grants, capacity)
	if float64(ok) < 0.8*float64(capacity) {
		t.Errorf("%d requests served, under 80%% of the %d the capacity allows", ok, capacity)
	}
	if in, ab := pool.InUse(), pool.Abandoned(); in != 0 || ab != 0 {
		waitUntil(t, func() bool { return pool.InUse() == 0 && pool.Abandoned() == 0 }, func() string {
			return fmt.Sprintf("%d slots in use, %d abandoned after the run", pool.InUse(), pool.Abandoned())
		})
	}
}

// servable returns how many requests arriving at the given times, each
// needing a slot for d and answered within deadline of its arrival, n slots
// can serve at most. With equal durations and deadlines, serving in arrival
// order whatever can still finish in time is optimal.
func servable(arrivals []time.Duration, n int, d, deadline time.Duration) int {
	a := slices.Clone(arrivals)
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	free := make([]time.Duration, n)
	for i := range free {
		free[i] = -1 << 62
	}
	served := 0
	for _, at := range a {
		m := slices.Index(free, slices.Min(free))
		begin := max(free[m], at)
		if begin+d <= at+deadline {
			free[m] = begin + d
			served++
		}
	}
	return served
}
