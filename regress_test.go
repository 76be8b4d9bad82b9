package pam_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestReviewAbandonedConvCtx: after a call is abandoned, a module that
// prompts later must not reach a conversation that could wait forever, and
// the transaction must still be ended. The module waits at a gate until the
// call has been abandoned, then prompts.
func TestRegressAbandonedConvCtx(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	g := newGate(t)
	svc := st.Service("slowprompt", "auth required "+mod+" "+g.Args()+" prompt=Password:")
	got := make(chan error, 1)
	conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
		got <- errors.New("the conversation was called")
		<-ctx.Done()
		return nil, ctx.Err()
	})
	live := pam.LiveTransactions()
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Authenticate(ctx, 0) }()
	g.WaitEntered(t, 1)
	if err := cancelPromptly(t, cancel, done); !errors.Is(err, pam.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("authenticate: %v, want ErrClosed and the cancellation", err)
	}
	g.Open(t) // the module prompts now, after the abandon
	waitLive(t, live)
	select {
	case e := <-got: // the transaction has ended: any call has happened
		t.Fatalf("the conversation ran after the call was abandoned: %v", e)
	default:
	}
}

// TestReviewCleanupDuringOp: the runtime cleanup of a Handle that is
// unreachable while its last method runs must not cancel that method.
func TestRegressCleanupDuringOp(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	seen := make(chan error, 1)
	conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
		for range 20 {
			runtime.GC()
			select {
			case <-ctx.Done():
				seen <- context.Cause(ctx)
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		seen <- nil
		out := make([]pam.Response, len(msgs))
		for i := range out {
			out[i].Data = []byte("pw")
		}
		return out, nil
	})
	run := func() error {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
		if err != nil {
			t.Fatal(err)
		}
		return h.Authenticate(context.Background(), 0) // last use of h
	}
	err := run()
	cause := <-seen
	if cause != nil || err != nil {
		t.Errorf("handle closed by GC cleanup while Authenticate ran: cause=%v err=%v", cause, err)
	}
}

// TestReviewDialogCancelStaleStep: after Cancel, Next reports the end, not
// the batch it handed out before.
func TestRegressDialogCancelStaleStep(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, 10*time.Second,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	step, err := d.Next(context.Background())
	if err != nil || step.Done {
		t.Fatal(step, err)
	}
	d.Cancel()
	<-d.Done()
	step2, err := d.Next(context.Background())
	if !step2.Done {
		t.Errorf("after Cancel and Done, Next returned a stale prompt step seq=%d (Done=%v, err=%v)", step2.Seq, step2.Done, err)
	}
}

// TestReviewDialogStaleAnswerToNextBatch: a late answer to a batch whose
// conversation gave up must not answer the next batch. The test ends the
// first batch's context itself and waits for the second batch, and expires
// the dialog by hand: no clock decides.
func TestRegressDialogStaleAnswerToNextBatch(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	st.Service("first", "auth required "+mod+" prompt=First:")
	endFirst := make(chan context.CancelFunc, 1)
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: "first", User: "alice", ConfDir: st.Dir()}, time.Hour,
		func(ctx context.Context, h *pam.Handle) error {
			c1, cancel := context.WithCancel(ctx)
			defer cancel()
			endFirst <- cancel
			if err := h.Authenticate(c1, 0); err == nil {
				return errors.New("first unexpectedly succeeded")
			}
			// Retry on the same handle: a second batch.
			return h.Authenticate(ctx, 0)
		})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := d.Next(context.Background())
	if err != nil || s1.Done {
		t.Fatal(s1, err)
	}
	(<-endFirst)()                                                        // batch 1's op ctx ends; batch 2 comes
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard only
	defer cancel()
	for {
		s, err := d.Next(ctx)
		if err != nil || s.Done {
			t.Fatalf("waiting for batch 2: %+v, %v", s, err)
		}
		if s.Seq != s1.Seq {
			break
		}
		time.Sleep(time.Millisecond) // batch 1 is still shown until its conversation returns
	}
	// a request for batch 2 (Next) races with the late answer to batch 1
	go func() {
		s, err := d.Next(context.Background())
		t.Logf("concurrent Next: seq=%d prompts=%v err=%v", s.Seq, s.Prompts, err)
	}()
	err = d.Answer(s1.Seq, []pam.Response{{Data: []byte("secret-for-first")}})
	if !errors.Is(err, pam.ErrStaleAnswer) && !errors.Is(err, pam.ErrNotWaiting) {
		t.Errorf("late answer: %v, want ErrStaleAnswer or ErrNotWaiting", err)
	}
	d.Expire() // nobody answers batch 2
	select {
	case <-d.Done():
	case <-time.After(time.Minute):
		t.Fatal("dialog never ended")
	}
	t.Logf("dialog result: %v", d.Err())
	if d.Err() == nil {
		t.Errorf("the answer to batch %d was consumed by a later batch", s1.Seq)
	}
}

// TestReviewSetMaxInFlightRaise: raising the limit lets a waiting call in.
func TestRegressSetMaxInFlightRaise(t *testing.T) {
	old := pam.MaxInFlight()
	defer pam.SetMaxInFlight(old)
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	pam.SetMaxInFlight(1)
	release := make(chan struct{})
	waiting := make(chan struct{})
	conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
		close(waiting)
		<-release
		return nil, errors.New("no")
	})
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	go h.Authenticate(context.Background(), 0)
	<-waiting
	started := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang guard only
		defer cancel()
		h2, err := pam.StartContext(ctx, pam.Config{Service: svc, User: "bob", ConfDir: st.Dir(), Conv: pam.Answers()})
		if err == nil {
			h2.Close()
		}
		started <- err
	}()
	time.Sleep(50 * time.Millisecond)
	pam.SetMaxInFlight(100)
	err := <-started
	close(release)
	if err != nil {
		t.Errorf("limit raised to 100 with 1 call running, a waiting Start still failed: %v", err)
	}
}

// TestReviewCloseVsQueuedOp: Close refuses an operation queued behind the one
// it cancels, instead of letting it run to its end.
func TestRegressCloseVsQueuedOp(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	entered := make(chan struct{}, 2)
	conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
		entered <- struct{}{}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(30 * time.Second):
			return nil, context.DeadlineExceeded
		}
	})
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err != nil {
		t.Fatal(err)
	}
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- h.Authenticate(context.Background(), 0) }()
	<-entered
	go func() { second <- h.Authenticate(context.Background(), 0) }() // queued on the handle
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the queued operation's conversation")
	}
	for _, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, pam.ErrClosed) {
			t.Errorf("operation interrupted by Close: %v, want ErrClosed", err)
		}
	}
}

// TestReviewAbandonErrClosed: an abandoned call's error matches both
// ErrClosed and the context's error, Close returns at once, and the
// transaction is ended when the module returns.
func TestRegressAbandonErrClosed(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	g := newGate(t) // the module stays in C until the call has been abandoned
	svc := st.Service("slow", "auth required "+mod+" "+g.Args())
	live := pam.LiveTransactions()
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = h.Authenticate(ctx, 0)
	if !errors.Is(err, pam.ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrClosed and the deadline", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if pam.LiveTransactions() == live {
		t.Error("the transaction was ended while its module was still in C")
	}
	g.Open(t)
	waitLive(t, live)
}

// TestRegressReentrantCall: a conversation that calls back into its own
// handle gets ErrReentrant instead of deadlocking.
func TestRegressReentrantCall(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	var h *pam.Handle
	var inner []error
	conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
		_, err := h.Item(pam.ItemUser)
		inner = append(inner, err, h.Close(), h.Env().Set("A", "1"))
		out := make([]pam.Response, len(msgs))
		for i := range out {
			out[i].Data = []byte("pw")
		}
		return out, nil
	})
	h = startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for _, err := range inner {
		if !errors.Is(err, pam.ErrReentrant) {
			t.Errorf("a call from inside the conversation: %v, want ErrReentrant", err)
		}
	}
	if len(inner) != 3 {
		t.Fatalf("%d calls recorded", len(inner))
	}
}

// TestRegressReentrantCloseKeepsCleanup: a Close refused with ErrReentrant
// (from inside the conversation) must not cancel the runtime cleanup, which
// ends the transaction of a handle that is then dropped.
func TestRegressReentrantCloseKeepsCleanup(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	live := pam.LiveTransactions()
	func() {
		// The conversation reaches the handle weakly: the state it belongs
		// to must not keep the handle alive.
		var wh weak.Pointer[pam.Handle]
		var closeErr error
		conv := pam.ConversationFunc(func(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
			closeErr = wh.Value().Close()
			out := make([]pam.Response, len(msgs))
			for i := range out {
				out[i].Data = []byte("pw")
			}
			return out, nil
		})
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
		if err != nil {
			t.Fatal(err)
		}
		wh = weak.Make(h)
		if err := h.Authenticate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(closeErr, pam.ErrReentrant) {
			t.Fatalf("Close from the conversation: %v, want ErrReentrant", closeErr)
		}
	}() // the handle is dropped here, never closed
	waitUntil(t, func() bool { runtime.GC(); return pam.LiveTransactions() <= live }, func() string {
		return itoa(pam.LiveTransactions()) + " live transactions: the dropped handle was never ended"
	})
}
