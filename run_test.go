//go:build linux

package pam_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// recordedThreads returns the thread ids the C test module wrote to file
// (pairs of "operation tid").
func recordedThreads(t *testing.T, file string) map[int]bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		t.Fatalf("the module recorded no thread: %q", data)
	}
	tids := map[int]bool{}
	for j := 1; j < len(fields); j += 2 {
		n, err := strconv.Atoi(fields[j])
		if err != nil {
			t.Fatal(err)
		}
		tids[n] = true
	}
	return tids
}

// everyOperation runs all the operations of a handle, in a login's order.
func everyOperation(ctx context.Context, h *pam.Handle) error {
	for _, op := range []func(context.Context, pam.Flags) error{
		h.Authenticate, h.AcctMgmt, h.EstablishCredentials, h.OpenSession,
		h.ChangeAuthTok, h.RefreshCredentials, h.CloseSession, h.DeleteCredentials,
	} {
		if err := op(ctx, 0); err != nil {
			return err
		}
	}
	_, err := h.Env().List()
	return err
}

// tidStack is a stack of the C test module recording its thread ids, with
// one conversation message per call.
func tidStack(t *testing.T) (*pamtest.Stack, string, string) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	tids := st.File("tids", "")
	args := mod + " tidfile=" + tids + " nmsg=1"
	svc := st.Service("tids", "auth required "+args, "account required "+args,
		"session required "+args, "password required "+args)
	return st, svc, tids
}

// TestRunOnCallersThread: with a context that cannot end, Run runs the whole
// transaction on the caller's own thread.
func TestRunOnCallersThread(t *testing.T) {
	st, svc, tids := tidStack(t)
	var mu sync.Mutex
	convTIDs := map[int]bool{}
	conv := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		mu.Lock()
		convTIDs[syscall.Gettid()] = true
		mu.Unlock()
		return make([]pam.Response, len(msgs)), nil
	})
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	type result struct {
		caller int
		err    error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // the caller's thread, known before Run
		defer runtime.UnlockOSThread()
		caller := syscall.Gettid()
		err := pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv},
			func(ctx context.Context, h *pam.Handle) error {
				if n := pam.CallsInFlight(); n != slots+1 {
					t.Errorf("inside Run: %d call slots held, want %d", n, slots+1)
				}
				return everyOperation(ctx, h)
			})
		done <- result{caller, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	ran := recordedThreads(t, tids)
	// A conversation of the program's own runs on a goroutine of its own,
	// where a runtime.Goexit cannot reach libpam's C frames.
	if len(convTIDs) == 0 || convTIDs[r.caller] {
		t.Errorf("the conversation ran on threads %v, want some other than the caller's %d", convTIDs, r.caller)
	}
	if len(ran) != 1 || !ran[r.caller] {
		t.Errorf("the transaction ran on threads %v, want only the caller's %d", ran, r.caller)
	}
	if n := pam.LiveTransactions(); n != live {
		t.Errorf("%d live transactions after Run, want %d", n, live)
	}
	if n := pam.CallsInFlight(); n != slots {
		t.Errorf("%d call slots held after Run, want %d", n, slots)
	}
}

// TestRunWithContextOneThread: with a context that can end, fn runs on a
// goroutine of its own, and the transaction on that goroutine's one thread.
func TestRunWithContextOneThread(t *testing.T) {
	st, svc, tids := tidStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	caller := syscall.Gettid()
	var fnTIDs []int
	err := pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()},
		func(ctx context.Context, h *pam.Handle) error {
			fnTIDs = append(fnTIDs, syscall.Gettid())
			err := everyOperation(ctx, h)
			fnTIDs = append(fnTIDs, syscall.Gettid())
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	ran := recordedThreads(t, tids)
	if len(ran) != 1 || ran[caller] || !ran[fnTIDs[0]] || fnTIDs[0] != fnTIDs[1] {
		t.Errorf("the transaction ran on threads %v, fn on %v, the caller on %d: want fn's one thread, not the caller's",
			ran, fnTIDs, caller)
	}
}

// TestRunHandleBelongsToFn: other goroutines get ErrNotOwner, except Close,
// which refuses fn's later calls; Run still ends the transaction.
func TestRunHandleBelongsToFn(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so", "account required pam_permit.so")
	live := pam.LiveTransactions()
	err := pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()},
		func(ctx context.Context, h *pam.Handle) error {
			other := func(f func() error) error {
				ch := make(chan error)
				go func() { ch <- f() }()
				return <-ch
			}
			if err := other(func() error { return h.AcctMgmt(ctx, 0) }); !errors.Is(err, pam.ErrNotOwner) {
				t.Errorf("AcctMgmt from another goroutine: got %v, want ErrNotOwner", err)
			}
			if err := other(func() error { return h.Env().Set("A", "1") }); !errors.Is(err, pam.ErrNotOwner) {
				t.Errorf("Env().Set from another goroutine: got %v, want ErrNotOwner", err)
			}
			if _, err := other2(func() (string, error) { return h.Item(pam.ItemUser) }); !errors.Is(err, pam.ErrNotOwner) {
				t.Errorf("Item from another goroutine: got %v, want ErrNotOwner", err)
			}
			if err := h.Authenticate(ctx, 0); err != nil {
				t.Errorf("Authenticate from fn: %v", err)
			}
			if err := other(h.Close); err != nil {
				t.Errorf("Close from another goroutine: %v", err)
			}
			if pam.LiveTransactions() != live+1 {
				t.Error("Close from another goroutine ended the transaction off its thread")
			}
			return h.AcctMgmt(ctx, 0)
		})
	if !errors.Is(err, pam.ErrClosed) {
		t.Errorf("Run: got %v, want fn's ErrClosed", err)
	}
	if n := pam.LiveTransactions(); n != live {
		t.Errorf("%d live transactions after Run, want %d", n, live)
	}
}

func other2[T any](f func() (T, error)) (T, error) {
	type r struct {
		v   T
		err error
	}
	ch := make(chan r)
	go func() { v, err := f(); ch <- r{v, err} }()
	x := <-ch
	return x.v, x.err
}

func TestRunCancelDuringConversation(t *testing.T) {
	dir, svc, conv, waiting := waitingConv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: dir, Conv: conv},
			func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	}()
	<-waiting
	err := cancelPromptly(t, cancel, done)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, pam.ErrConv) {
		t.Fatalf("got %v, want the conversation error wrapping context.Canceled", err)
	}
}

// TestRunCancelDuringModuleInC: Run returns while the module still waits in
// C at a gate, the transaction ends when the module does, and nothing is
// left behind.
func TestRunCancelDuringModuleInC(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_exec")
	st := pamtest.New(t)
	g := newGate(t)
	svc := st.Service("slow", "auth required "+testmodule.Build(t)+" "+g.Args(), "account required pam_permit.so")
	afterCancel := make(chan error, 1)
	entered := 0
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	run := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()},
				func(ctx context.Context, h *pam.Handle) error {
					err := h.Authenticate(ctx, 0)
					afterCancel <- h.AcctMgmt(context.Background(), 0)
					return err
				})
		}()
		entered++
		g.WaitEntered(t, entered)
		err := cancelPromptly(t, cancel, done) // the gate is shut: the module is still in C
		g.Open(t)                              // fn's AcctMgmt below waits for the module
		if !errors.Is(err, context.Canceled) || !errors.Is(err, pam.ErrClosed) {
			t.Fatalf("got %v, want ErrClosed wrapping context.Canceled", err)
		}
		if err := <-afterCancel; !errors.Is(err, pam.ErrClosed) {
			t.Fatalf("fn's call after Run gave up: got %v, want ErrClosed", err)
		}
		waitLive(t, live) // the module saw the gate open and returned
		g.Close(t)
	}
	settled := func() {
		waitLive(t, live)
		waitUntil(t, func() bool { return pam.CallsInFlight() == slots }, func() string {
			return itoa(pam.CallsInFlight()) + " call slots held, want " + itoa(slots)
		})
	}
	run() // warm up: first dlopen of the modules, thread creation
	settled()
	goroutines := runtime.NumGoroutine()
	// run checks that fn's call after Run returned got ErrClosed: the
	// transaction outlived Run, and ended when the script did.
	for range 5 {
		run()
	}
	settled()
	waitGoroutines(t, goroutines)
}

func TestRunPanic(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so")
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	for _, ctx := range []context.Context{context.Background(), t.Context()} {
		err := pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()},
			func(ctx context.Context, h *pam.Handle) error {
				if err := h.Authenticate(ctx, 0); err != nil {
					return err
				}
				panic("fn broke")
			})
		var p *pam.PanicError
		if !errors.As(err, &p) || p.Value != "fn broke" || len(p.Stack) == 0 {
			t.Fatalf("got %v, want a PanicError with the value and a stack", err)
		}
		if n := pam.LiveTransactions(); n != live {
			t.Errorf("%d live transactions after the panic, want %d", n, live)
		}
		if n := pam.CallsInFlight(); n != slots {
			t.Errorf("%d call slots held after the panic, want %d", n, slots)
		}
	}
}

// TestRunFailDelayGivesThreadBack: during a failed login's fail delay, fn's
// goroutine holds no call slot, and it can go on afterwards. The test sees
// the slot free after the call has entered the stack and before
// Authenticate returns (events, not a sleep); the 1 to 3 s delay libpam
// picks leaves that window open a thousand times longer than one look takes.
func TestRunFailDelayGivesThreadBack(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_faildelay and the fail delay")
	st := pamtest.New(t)
	g := newGate(t)
	svc := st.Service("deny", "auth required "+testmodule.Build(t)+" tidfile="+g.entered,
		"auth required pam_faildelay.so delay=2000000", "auth required pam_deny.so",
		"account required pam_permit.so")
	slots := pam.CallsInFlight()
	done := make(chan error)
	var took time.Duration
	var returned atomic.Bool
	go func() {
		done <- pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()},
			func(ctx context.Context, h *pam.Handle) error {
				start := time.Now()
				err := h.Authenticate(ctx, 0)
				returned.Store(true)
				took = time.Since(start)
				if !errors.Is(err, pam.ErrAuth) {
					return err
				}
				if n := pam.CallsInFlight(); n != slots {
					t.Errorf("after the delay, before the next call: %d call slots held, want %d", n, slots)
				}
				if err := h.AcctMgmt(ctx, 0); err != nil { // on the thread fn has after the wait
					return err
				}
				if n := pam.CallsInFlight(); n != slots+1 {
					t.Errorf("after the next call: %d call slots held, want %d", n, slots+1)
				}
				return nil
			})
	}()
	g.WaitEntered(t, 1) // Authenticate is in the stack, holding its slot
	sawFree := false
	for !returned.Load() {
		if pam.CallsInFlight() == slots && !returned.Load() {
			sawFree = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !sawFree {
		t.Errorf("no look between the stack's start and Authenticate's return saw the call slot free: the fail delay holds it")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took < 500*time.Millisecond {
		t.Errorf("the failed Authenticate returned after %v: no fail delay", took)
	}
}

func TestRunBadInput(t *testing.T) {
	slots, live := pam.CallsInFlight(), pam.LiveTransactions()
	called := false
	fn := func(context.Context, *pam.Handle) error { called = true; return nil }
	var in *pam.InputError
	if err := pam.Run(context.Background(), pam.Config{Service: "a\x00b"}, fn); !errors.As(err, &in) || !errors.Is(err, pam.ErrNUL) {
		t.Errorf("NUL in the service: got %v, want an InputError wrapping ErrNUL", err)
	}
	if err := pam.Run(context.Background(), pam.Config{Threads: pam.ThreadPerHandle}, fn); !errors.As(err, &in) {
		t.Errorf("Threads set: got %v, want an InputError", err)
	}
	if err := pam.Run(context.Background(), pam.Config{}, nil); err == nil {
		t.Error("nil fn: no error")
	}
	if called {
		t.Error("fn was called despite bad input")
	}
	if pam.CallsInFlight() != slots || pam.LiveTransactions() != live {
		t.Error("bad input left a call slot or a transaction behind")
	}
}

// TestRunStaysOnOneThread: without the caller locking its thread first, the
// whole transaction still runs on one thread.
func TestRunStaysOnOneThread(t *testing.T) {
	st, svc, tids := tidStack(t)
	err := pam.Run(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()},
		func(ctx context.Context, h *pam.Handle) error {
			for range 3 {
				if err := h.Authenticate(ctx, 0); err != nil {
					return err
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
			return everyOperation(ctx, h)
		})
	if err != nil {
		t.Fatal(err)
	}
	if ran := recordedThreads(t, tids); len(ran) != 1 {
		t.Errorf("the transaction ran on threads %v, want one", ran)
	}
}

// threadAlive reports whether thread tid of this process still exists.
func threadAlive(tid int) bool {
	_, err := os.Stat("/proc/self/task/" + itoa(tid))
	return err == nil
}

// TestRunRetiresDirtyThread: after a credential call, the thread is not
// handed back to the scheduler: it ends with fn's goroutine.
func TestRunRetiresDirtyThread(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so")
	cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}
	credFn := func(tid *int) func(context.Context, *pam.Handle) error {
		return func(ctx context.Context, h *pam.Handle) error {
			*tid = syscall.Gettid()
			return h.EstablishCredentials(ctx, 0)
		}
	}
	// A locked goroutine that exits ends its thread, except the process's
	// main thread, which Go parks for good instead: retry until fn lands
	// elsewhere, so that the end of the thread can be seen.
	mainThread := os.Getpid()
	t.Run("own goroutine", func(t *testing.T) {
		for range 20 {
			var tid int
			if err := pam.Run(t.Context(), cfg, credFn(&tid)); err != nil {
				t.Fatal(err)
			}
			if tid == mainThread {
				continue
			}
			waitUntil(t, func() bool { return !threadAlive(tid) }, func() string {
				return "fn's thread " + itoa(tid) + " still exists after Run: it was handed back"
			})
			return
		}
		t.Fatal("fn ran on the main thread 20 times (a thread handed back is reused): cannot see its thread end")
	})
	t.Run("caller's goroutine", func(t *testing.T) {
		for range 20 {
			var tid int
			moved := make(chan string, 1)
			go func() {
				if err := pam.Run(context.Background(), cfg, credFn(&tid)); err != nil {
					moved <- err.Error()
					return
				}
				for range 5 {
					runtime.Gosched()
					time.Sleep(2 * time.Millisecond)
					if now := syscall.Gettid(); now != tid {
						moved <- "the caller moved from thread " + itoa(tid) + " to " + itoa(now) + ": Run unlocked it"
						return
					}
				}
				moved <- ""
			}()
			if msg := <-moved; msg != "" {
				t.Fatal(msg)
			}
			if tid == mainThread {
				continue
			}
			waitUntil(t, func() bool { return !threadAlive(tid) }, func() string {
				return "the caller's thread " + itoa(tid) + " outlived its goroutine"
			})
			return
		}
		t.Fatal("the caller ran on the main thread 20 times (a thread handed back is reused): cannot see its thread end")
	})
}

func TestRunGoexit(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so")
	live := pam.LiveTransactions()
	// Run must not wait for ctx to end: a minute, against milliseconds of
	// work, tells the two apart on any machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := pam.Run(ctx, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()},
		func(context.Context, *pam.Handle) error { runtime.Goexit(); return nil })
	if err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("got %v, want an error naming runtime.Goexit", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Run returned after %v", took)
	}
	waitLive(t, live)
}

// TestCloseNotBlockedBySlotWait: a call waiting for a call slot holds the
// handle, but Close still returns at once and the call fails.
func TestCloseNotBlockedBySlotWait(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so")
	cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Threads: pam.ThreadCaller}
	for _, tc := range []struct {
		name string
		call func(*pam.Handle) error
	}{
		{"Authenticate", func(h *pam.Handle) error { return h.Authenticate(context.Background(), 0) }},
		{"Item", func(h *pam.Handle) error { _, err := h.Item(pam.ItemUser); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := pam.Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			pam.SetMaxInFlight(pam.CallsInFlight() + 1)
			defer pam.SetMaxInFlight(0)
			hold := startCfg(t, pam.Config{Service: svc, User: "bob", ConfDir: st.Dir(), Threads: pam.ThreadPerHandle})
			defer hold.Close()
			done := make(chan error, 1)
			go func() { done <- tc.call(h) }()
			select {
			case err := <-done:
				t.Fatalf("the call did not wait for a slot: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			closeDone := make(chan error, 1)
			go func() { closeDone <- h.Close() }()
			select {
			case err := <-closeDone:
				if err != nil {
					t.Errorf("Close: %v", err)
				}
			case <-time.After(promptly):
				t.Errorf("Close still waits %v after it was called, while a call waits for a slot", promptly)
				hold.Close() // frees the slot, so that the test can end
				<-closeDone
			}
			if err := <-done; !errors.Is(err, pam.ErrClosed) {
				t.Errorf("the waiting call: got %v, want ErrClosed", err)
			}
		})
	}
}
