package pam_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// promptly bounds the wait for a call that must return at once. It only
// guards against a hang: each test proves that the call did not wait by an
// event instead (what it would have waited for has not happened yet when it
// returns), so a slow machine makes the tests slower, never red.
const promptly = time.Minute

// waitingConv returns a one-prompt stack (its confdir and service) and a
// conversation that waits for its context to end; waiting is closed when it
// starts to wait.
func waitingConv(t *testing.T) (dir, svc string, conv pam.Conversation, waiting <-chan struct{}) {
	st := pamtest.New(t)
	svc = st.Service("prompt", promptLine(t))
	ch := make(chan struct{})
	conv = pam.ConversationFunc(func(ctx context.Context, _ []pam.Message) ([]pam.Response, error) {
		close(ch)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	return st.Dir(), svc, conv, ch
}

func TestCancelDuringConversation(t *testing.T) {
	dir, svc, conv, waiting := waitingConv(t)
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: dir, Conv: conv})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Authenticate(ctx, 0) }()
	<-waiting
	if err := cancelPromptly(t, cancel, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want an error wrapping context.Canceled", err)
	}
}

// cancelPromptly cancels an operation running on another goroutine, which
// reports to done, and returns the operation's error. The callers hold what
// the operation could wait for (a conversation, a module) until it returns.
func cancelPromptly(t *testing.T, cancel context.CancelFunc, done <-chan error) error {
	t.Helper()
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		t.Logf("returned %v after the cancel", time.Since(cancelled))
		return err
	case <-time.After(promptly):
		t.Fatalf("no return %v after the cancel", promptly)
		return nil
	}
}

// TestCancelIgnoredByConversation: a conversation that does not watch its
// context cannot hold the caller.
func TestCancelIgnoredByConversation(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	release := make(chan struct{})
	waiting := make(chan struct{})
	conv := pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
		close(waiting)
		<-release
		return nil, errors.New("too late")
	})
	live := pam.LiveTransactions()
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Authenticate(ctx, 0) }()
	<-waiting
	if err := cancelPromptly(t, cancel, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := h.AcctMgmt(context.Background(), 0); !errors.Is(err, pam.ErrClosed) {
		t.Fatalf("abandoned handle: got %v, want ErrClosed", err)
	}
	close(release)
	waitLive(t, live)
	if err := h.Close(); err != nil {
		t.Errorf("Close of an abandoned handle: %v", err)
	}
}

// TestCancelDuringModuleInC cancels while a module waits in C at a gate,
// so the call returns while the module still runs; then it opens the gate
// and checks that the transaction is ended once the module is done and that
// nothing is left: goroutines, transactions, call slots, C memory.
func TestCancelDuringModuleInC(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_exec")
	st := pamtest.New(t)
	g := newGate(t)
	svc := st.Service("slow", "auth required "+testmodule.Build(t)+" "+g.Args())
	entered := 0
	run := func() {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Authenticate(ctx, 0) }()
		entered++
		g.WaitEntered(t, entered)
		err = cancelPromptly(t, cancel, done) // the gate is shut: the module is still in C
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if err := h.Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrClosed) {
			t.Fatalf("abandoned handle: got %v, want ErrClosed", err)
		}
	}
	live0 := pam.LiveTransactions()
	run() // warm up: first dlopen of the modules, thread creation
	g.Open(t)
	waitLive(t, live0)
	g.Close(t)
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	goroutines := runtime.NumGoroutine()
	malloc, haveMalloc := pam.MallocInUse()
	for range 10 {
		run()
	}
	if pam.LiveTransactions() == live {
		t.Error("transactions were ended before their C calls returned")
	}
	g.Open(t)
	waitLive(t, live)
	if n := pam.CallsInFlight(); n != slots {
		t.Errorf("%d call slots held, want %d", n, slots)
	}
	waitGoroutines(t, goroutines)
	if haveMalloc {
		after, _ := pam.MallocInUse()
		if grew := int64(after) - int64(malloc); grew > 64<<10 {
			t.Errorf("C heap grew by %d bytes over 10 abandoned transactions", grew)
		}
	} else if runtime.GOOS == "linux" {
		t.Error("mallinfo2 is unavailable: cannot count C memory")
	}
}
