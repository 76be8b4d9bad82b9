package pam_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// promptly is how soon a cancelled call must return.
const promptly = 100 * time.Millisecond

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
// reports to done, and checks that it returns promptly; it returns the
// operation's error.
func cancelPromptly(t *testing.T, cancel context.CancelFunc, done <-chan error) error {
	t.Helper()
	cancelled := time.Now()
	cancel()
	err := <-done
	if took := time.Since(cancelled); took > promptly {
		t.Errorf("returned %v after the cancel", took)
	}
	return err
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

// TestCancelDuringModuleInC cancels while pam_exec waits for a sleeping
// script, then checks that the transaction is ended once the script is done
// and that nothing is left: goroutines, transactions, call slots, C memory.
func TestCancelDuringModuleInC(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_exec")
	st := pamtest.New(t)
	script := st.Script("sleep.sh", "exec /bin/sleep 0.3\n")
	svc := st.Service("slow", "auth required pam_exec.so quiet "+script)
	run := func() {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		start := time.Now()
		err = h.Authenticate(ctx, 0)
		if took := time.Since(start); took > 50*time.Millisecond+promptly {
			t.Errorf("returned after %v, the script sleeps 300ms", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if err := h.Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrClosed) {
			t.Fatalf("abandoned handle: got %v, want ErrClosed", err)
		}
	}
	run() // warm up: first dlopen of the modules, thread creation
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	waitLive(t, live)
	goroutines := runtime.NumGoroutine()
	malloc, haveMalloc := pam.MallocInUse()
	for range 10 {
		run()
	}
	if pam.LiveTransactions() == live {
		t.Error("transactions were ended before their C calls returned")
	}
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
