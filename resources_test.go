package pam_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// resources is what the process holds that a leak would grow.
type resources struct {
	fds, threads, goroutines int
	cheap, goHeap            uint64
}

// The constants the resources must return within after the run.
const (
	flatFDs        = 4       // descriptors
	flatThreads    = 16      // OS threads: the runtime keeps idle ones
	flatGoroutines = 8       // the idle thread pool and the runtime's own
	flatHeap       = 1 << 20 // bytes, C heap and Go heap each
)

func measureResources(t *testing.T) resources {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c, ok := pam.MallocInUse()
	if !ok {
		t.Fatal("mallinfo2 is unavailable: cannot measure the C heap (needs glibc)")
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting file descriptors: %v", err)
	}
	return resources{fds: len(fds), threads: osThreads(t), goroutines: runtime.NumGoroutine(), cheap: c, goHeap: ms.HeapAlloc}
}

// osThreads reads the process's thread count from /proc/self/status.
func osThreads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("reading /proc/self/status: %v", err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				t.Fatalf("Threads: %q", v)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// TestResourcesFlat runs 100,000 transactions (10,000 under the race
// detector, under the strict pass of the test command, or with
// -short), four at a time, of five kinds: failed logins waiting
// out a fail delay, sessions, environment listings, calls cancelled during
// their conversation, and dialogs abandoned by their idle timeout. Then it
// checks that file descriptors, OS threads, goroutines, the C heap and the
// Go heap are back to what they were after a warm-up, within the constants
// above. Nothing is timed: the fail delays and idle timeouts are a few
// milliseconds so that the run stays short.
func TestResourcesFlat(t *testing.T) {
	n := 100000
	if raceEnabled || testing.Short() || strictSuite() {
		n = 10000
	}
	st := pamtest.New(t)
	// One module per stack: loading modules is most of a transaction's
	// cost. The failed logins ask for their fail delay with FailDelay.
	fail := st.Service("fail", "auth required pam_deny.so")
	permit := st.Service("permit", "auth required pam_permit.so", "account required pam_permit.so",
		"session required pam_permit.so")
	prompt := st.Service("prompt", "auth required pam_stress.so")
	cfg := func(svc string, conv pam.Conversation) pam.Config {
		return pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv}
	}
	cancelling := pam.ConversationFunc(func(ctx context.Context, _ []pam.Message) ([]pam.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	var failures atomic.Int64
	fatal := func(format string, args ...any) {
		if failures.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	transaction := func(i int) {
		ctx := context.Background()
		switch i % 5 {
		case 0: // a failed login and its fail delay
			h, err := pam.Start(cfg(fail, pam.Answers()))
			if err != nil {
				fatal("start: %v", err)
				return
			}
			if err := h.FailDelay(2 * time.Millisecond); err != nil {
				fatal("fail delay: %v", err)
			}
			if err := h.Authenticate(ctx, 0); !errors.Is(err, pam.ErrAuth) {
				fatal("failed login: %v", err)
			}
			h.Close()
		case 1: // a session
			h, err := pam.Start(cfg(permit, pam.Answers()))
			if err != nil {
				fatal("start: %v", err)
				return
			}
			for _, op := range []func(context.Context, pam.Flags) error{h.Authenticate, h.AcctMgmt, h.OpenSession, h.CloseSession} {
				if err := op(ctx, 0); err != nil {
					fatal("session: %v", err)
				}
			}
			h.Close()
		case 2: // environment listings
			h, err := pam.Start(cfg(permit, pam.Answers()))
			if err != nil {
				fatal("start: %v", err)
				return
			}
			env := h.Env()
			if err := env.Set("GOPAM_X", "value"); err != nil {
				fatal("setenv: %v", err)
			}
			if l, err := env.List(); err != nil || len(l) != 1 {
				fatal("list: %q, %v", l, err)
			}
			if _, err := env.Map(); err != nil {
				fatal("map: %v", err)
			}
			h.Close()
		case 3: // a call cancelled during its conversation
			h, err := pam.Start(cfg(prompt, cancelling))
			if err != nil {
				fatal("start: %v", err)
				return
			}
			cctx, cancel := context.WithCancel(ctx)
			go cancel()
			if err := h.Authenticate(cctx, 0); !errors.Is(err, context.Canceled) {
				fatal("cancelled call: %v", err)
			}
			cancel()
			h.Close()
		case 4: // a dialog nobody answers, abandoned by its idle timeout
			d, err := pam.StartDialog(ctx, cfg(prompt, nil), time.Millisecond,
				func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
			if err != nil {
				fatal("start dialog: %v", err)
				return
			}
			<-d.Done()
			if !errors.Is(d.Err(), pam.ErrIdleTimeout) {
				fatal("dialog: %v, want ErrIdleTimeout", d.Err())
			}
		}
	}
	run := func(count int) {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 4 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < count; i = int(next.Add(1)) - 1 {
					transaction(i)
				}
			})
		}
		wg.Wait()
		if failures.Load() > 0 {
			t.FailNow()
		}
	}
	live := pam.LiveTransactions()
	run(2000) // warm up: modules loaded, threads made, pools filled
	waitLive(t, live)
	before := measureResources(t)
	start := time.Now()
	run(n)
	took := time.Since(start)
	waitLive(t, live)
	var after resources
	// What ends in the background (retired threads, goroutines) takes a
	// moment; poll until flat, with a minute as a hang guard only.
	flat := func() bool {
		after = measureResources(t)
		return after.fds <= before.fds+flatFDs && after.threads <= before.threads+flatThreads &&
			after.goroutines <= before.goroutines+flatGoroutines &&
			int64(after.cheap)-int64(before.cheap) < flatHeap && int64(after.goHeap)-int64(before.goHeap) < flatHeap
	}
	for deadline := time.Now().Add(time.Minute); !flat() && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	t.Logf("%d transactions in %v: fds %d -> %d, threads %d -> %d, goroutines %d -> %d, C heap %+d bytes, Go heap %+d bytes",
		n, took.Round(time.Millisecond), before.fds, after.fds, before.threads, after.threads, before.goroutines, after.goroutines,
		int64(after.cheap)-int64(before.cheap), int64(after.goHeap)-int64(before.goHeap))
	if !flat() {
		t.Errorf("resources did not return to the baseline within fds +%d, threads +%d, goroutines +%d, heaps +%d bytes",
			flatFDs, flatThreads, flatGoroutines, flatHeap)
	}
}
