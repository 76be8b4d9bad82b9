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

// TestDialogChauthtok answers pam_stress's password change, three prompts in
// one batch after an info-only batch, from another goroutine, the way a web
// server answers from the next request.
func TestDialogChauthtok(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_stress")
	st := pamtest.New(t)
	svc := st.Service("stress", "password required pam_stress.so")
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, 10*time.Second,
		func(ctx context.Context, h *pam.Handle) error { return h.ChangeAuthTok(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step, err := d.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if step.Done {
		t.Fatalf("ended before prompting: %v", step.Err)
	}
	var prompts int
	for _, m := range step.Prompts {
		if m.Style.IsPrompt() {
			prompts++
		}
	}
	if len(step.Prompts) != 3 || prompts != 2 {
		t.Fatalf("batch %+v: want three messages, two of them prompts", step.Prompts)
	}
	answered := make(chan error, 1)
	go func() {
		answered <- d.Answer(step.Seq, []pam.Response{{}, {Data: []byte("n3w")}, {Data: []byte("n3w")}})
	}()
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	step, err = d.Next(ctx)
	if err != nil || !step.Done || step.Err != nil {
		t.Fatalf("final step %+v, %v: want done and successful", step, err)
	}
	if err := d.Answer(step.Seq, nil); !errors.Is(err, pam.ErrNotWaiting) {
		t.Errorf("Answer after the end: %v, want ErrNotWaiting", err)
	}
}

// TestDialogPromptsOneByOne walks pam_stress's authentication: a user name
// prompt, then a password prompt, each its own step.
func TestDialogPromptsOneByOne(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_stress (the user name prompt)")
	st := pamtest.New(t)
	svc := st.Service("stress", "auth required pam_stress.so", "account required pam_permit.so")
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir()}, 10*time.Second,
		func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, want := range []pam.Style{pam.PromptEchoOn, pam.PromptEchoOff} {
		step, err := d.Next(ctx)
		if err != nil || step.Done || len(step.Prompts) != 1 || step.Prompts[0].Style != want {
			t.Fatalf("step %+v, %v: want one %v prompt", step, err, want)
		}
		if err := d.Answer(step.Seq-1, []pam.Response{{Data: []byte("stale")}}); !errors.Is(err, pam.ErrStaleAnswer) {
			t.Fatalf("answer for an old batch: %v, want ErrStaleAnswer", err)
		}
		if time.Until(step.Deadline) <= 0 || time.Until(step.Deadline) > 10*time.Second {
			t.Errorf("deadline %v is not within the idle timeout", step.Deadline)
		}
		if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("alice")}}); err != nil {
			t.Fatal(err)
		}
		// Refused either way: nothing waits yet, or the next batch does
		// already (the transaction runs on, in another goroutine).
		if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("again")}}); !errors.Is(err, pam.ErrNotWaiting) &&
			!errors.Is(err, pam.ErrStaleAnswer) {
			t.Fatalf("a second answer to one batch: %v, want ErrNotWaiting or ErrStaleAnswer", err)
		}
	}
	step, err := d.Next(ctx)
	if err != nil || !step.Done || step.Err != nil {
		t.Fatalf("final step %+v, %v", step, err)
	}
}

func TestDialogIdleTimeout(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	before := runtime.NumGoroutine()
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, 100*time.Millisecond,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	step, err := d.Next(context.Background())
	if err != nil || step.Done {
		t.Fatalf("first step %+v, %v", step, err)
	}
	// Nobody answers.
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned dialog was not cleaned up")
	}
	if err := d.Err(); !errors.Is(err, pam.ErrIdleTimeout) || !errors.Is(err, pam.ErrConv) {
		t.Fatalf("result %v: want a conversation error caused by ErrIdleTimeout", err)
	}
	if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("late")}}); !errors.Is(err, pam.ErrIdleTimeout) {
		t.Errorf("a late answer: %v, want ErrIdleTimeout", err)
	}
	waitGoroutines(t, before)
}

// TestDialogExpire strikes the idle timeout by hand, while a batch waits
// and before the next one: no clock decides anything.
func TestDialogExpire(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("stress", "auth required pam_stress.so", "account required pam_permit.so")
	for _, waiting := range []bool{true, false} {
		d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir()}, time.Hour,
			func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
		if err != nil {
			t.Fatal(err)
		}
		step, err := d.Next(context.Background())
		if err != nil || step.Done {
			t.Fatalf("first step %+v, %v", step, err)
		}
		if !waiting {
			// Answer the user name; the password prompt comes after Expire.
			if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("alice")}}); err != nil {
				t.Fatal(err)
			}
		}
		d.Expire()
		d.Expire() // twice is fine
		<-d.Done()
		if err := d.Err(); !errors.Is(err, pam.ErrIdleTimeout) {
			t.Fatalf("waiting=%v: result %v, want ErrIdleTimeout", waiting, err)
		}
		if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("late")}}); !errors.Is(err, pam.ErrIdleTimeout) || !errors.Is(err, pam.ErrNotWaiting) {
			t.Errorf("waiting=%v: a late answer: %v, want ErrNotWaiting and ErrIdleTimeout", waiting, err)
		}
	}
}

func TestDialogCancel(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, time.Minute,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Cancel()
	<-d.Done()
	if err := d.Err(); !errors.Is(err, pam.ErrDialogCancelled) {
		t.Fatalf("result %v: want ErrDialogCancelled", err)
	}
	if _, err := pam.StartDialog(context.Background(), pam.Config{Conv: pam.Answers()}, 0, func(context.Context, *pam.Handle) error { return nil }); err == nil {
		t.Error("StartDialog accepted a Config with its own conversation")
	}
}

// TestDialogFail declines a prompt: the module sees a conversation failure
// and the operation's error wraps the reason.
func TestDialogFail(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, time.Minute,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	step, err := d.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Fail(step.Seq, errHandler); err != nil {
		t.Fatal(err)
	}
	step, _ = d.Next(context.Background())
	if !step.Done || !errors.Is(step.Err, pam.ErrConv) || !errors.Is(step.Err, errHandler) {
		t.Fatalf("final step %+v: want ErrConv wrapping the reason", step)
	}
}

// TestDialogStartHonoursContext: with every call slot taken, StartDialog
// gives up when its context ends.
func TestDialogStartHonoursContext(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	defer pam.SetMaxInFlight(pam.MaxInFlight())
	pam.SetMaxInFlight(1)
	d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, time.Minute,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Cancel()
	if _, err := d.Next(context.Background()); err != nil { // now waiting, holding the one slot
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = pam.StartDialog(ctx, pam.Config{Service: svc, User: "bob", ConfDir: st.Dir()}, time.Minute,
		func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
}
