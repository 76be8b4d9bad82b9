package pam_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// goexitConv is a Conversation that ends its goroutine, as t.Fatal and
// t.FailNow do.
var goexitConv = pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
	runtime.Goexit()
	return nil, nil
})

// hangGuard bounds the wait for a call that a broken library never returns
// from: far beyond any step of the test (milliseconds), so that it only ever
// decides on a hang.
const hangGuard = 2 * time.Minute

// goexitPaths are the ways a PAM call can run: each thread placement, with a
// context that cannot end and with one that can.
var goexitPaths = []struct {
	name    string
	threads pam.ThreadPolicy
	run     bool // through pam.Run rather than Start
	cancel  bool // the call's context can end
}{
	{"per-handle/background", pam.ThreadPerHandle, false, false},
	{"per-handle/cancellable", pam.ThreadPerHandle, false, true},
	{"default/background", pam.ThreadCaller, false, false},
	{"default/cancellable", pam.ThreadCaller, false, true},
	{"run/background", pam.ThreadDefault, true, false},
	{"run/cancellable", pam.ThreadDefault, true, true},
}

// goexitStack returns the Config of a transaction on a stack whose module
// prompts once, with a conversation that calls Goexit.
func goexitStack(t *testing.T) pam.Config {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("goexit", "auth required "+mod+" prompt=Password:")
	return pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: goexitConv}
}

// goexitOnce runs one transaction (whose conversation calls runtime.Goexit)
// on a goroutine of its own (a library that lets the Goexit through would end
// the test's goroutine), and returns the errors of Authenticate and of the
// end of the transaction. It fails the test if the goroutine was ended or the
// call never returned.
func goexitOnce(t *testing.T, cfg pam.Config, threads pam.ThreadPolicy, run, cancel bool) (authErr, endErr error) {
	t.Helper()
	ctx := context.Background()
	if cancel {
		c, stop := context.WithCancel(ctx)
		defer stop()
		ctx = c
	}
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		if run {
			endErr = pam.Run(ctx, cfg, func(ctx context.Context, h *pam.Handle) error {
				authErr = h.Authenticate(ctx, 0)
				return nil
			})
		} else {
			cfg.Threads = threads
			h, err := pam.Start(cfg)
			if err != nil {
				endErr = err
				returned = true
				return
			}
			authErr = h.Authenticate(ctx, 0)
			endErr = h.Close()
		}
		returned = true
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("the call did not return in %v: the conversation's Goexit stopped it", hangGuard)
	}
	if !returned {
		t.Fatal("the conversation's runtime.Goexit ended the goroutine that called into PAM")
	}
	return authErr, endErr
}

// TestRegressGoexitInConversation: a Conversation that calls runtime.Goexit
// must end the call with a conversation error, like a panic, and leave
// nothing behind: no call slot, worker thread, callback registration or
// goroutine, and no C memory (the transaction is ended by pam_end).
func TestRegressGoexitInConversation(t *testing.T) {
	cfg := goexitStack(t)
	for _, p := range goexitPaths {
		t.Run(p.name, func(t *testing.T) {
			// A normal transaction first, so that the pool of idle worker
			// threads is as the Goexit one should leave it.
			normal := cfg
			normal.Conv = pam.Answers([]byte("x"))
			if authErr, endErr := goexitOnce(t, normal, p.threads, p.run, p.cancel); authErr != nil || endErr != nil {
				t.Fatalf("a normal transaction: %v, %v", authErr, endErr)
			}
			slots, live, threads := pam.CallsInFlight(), pam.LiveTransactions(), pam.ThreadsHeld()
			goroutines := runtime.NumGoroutine()
			authErr, endErr := goexitOnce(t, cfg, p.threads, p.run, p.cancel)
			if !errors.Is(authErr, pam.ErrConv) || !errors.Is(authErr, pam.ErrGoexit) {
				t.Errorf("authenticate: %v, want ErrConv wrapping ErrGoexit", authErr)
			}
			if endErr != nil {
				t.Errorf("end of the transaction: %v", endErr)
			}
			waitLive(t, live)
			waitUntil(t, func() bool { return pam.CallsInFlight() <= slots && pam.ThreadsHeld() <= threads }, func() string {
				return fmt.Sprintf("%d call slots and %d threads held, want %d and %d", pam.CallsInFlight(), pam.ThreadsHeld(), slots, threads)
			})
			waitGoroutines(t, goroutines)
		})
	}
}

// TestRegressGoexitSlots is the reproduction: with two call slots,
// two handles whose conversation calls Goexit must not keep their slots, so
// that an unrelated Start still gets one at once.
func TestRegressGoexitSlots(t *testing.T) {
	cfg := goexitStack(t)
	prev := pam.MaxInFlight()
	pam.SetMaxInFlight(pam.CallsInFlight() + 2)
	defer pam.SetMaxInFlight(prev)
	for range 2 {
		goexitOnce(t, cfg, pam.ThreadDefault, false, true)
	}
	// A Start that would have to wait for a slot fails at once: no clock
	// decides.
	for range 2 {
		h, err := pam.Start(pam.Config{Service: cfg.Service, User: "bob", ConfDir: cfg.ConfDir, Conv: pam.Answers([]byte("x")),
			SlotWait: pam.NoSlotWait})
		if err != nil {
			t.Fatalf("start after two Goexit conversations: %v (call slots held: %d)", err, pam.CallsInFlight())
		}
		defer h.Close()
	}
}

// TestRegressGoexitNoCLeak: 300 transactions whose conversation calls Goexit
// leave the C heap as it was (each leaked pam handle costs about 1.8 kB).
func TestRegressGoexitNoCLeak(t *testing.T) {
	cfg := goexitStack(t)
	for _, p := range goexitPaths {
		t.Run(p.name, func(t *testing.T) {
			live := pam.LiveTransactions()
			for range 20 {
				goexitOnce(t, cfg, p.threads, p.run, p.cancel)
			}
			waitLive(t, live)
			c0 := cHeap(t)
			const n = 300
			for range n {
				goexitOnce(t, cfg, p.threads, p.run, p.cancel)
			}
			waitLive(t, live)
			grew := int64(cHeap(t)) - int64(c0)
			t.Logf("%d transactions: C heap %+d bytes", n, grew)
			if grew > 64<<10 {
				t.Errorf("the C heap grew by %d bytes over %d transactions", grew, n)
			}
		})
	}
}

// cHeap returns the bytes in use in the C heap.
func cHeap(t *testing.T) uint64 {
	t.Helper()
	c, ok := pam.MallocInUse()
	if !ok {
		t.Fatal("mallinfo2 is unavailable: cannot measure the C heap (needs glibc)")
	}
	return c
}
