package pam_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// delayStack fails authentication after asking for a fail delay of d.
func delayStack(t *testing.T, d time.Duration) (*pamtest.Stack, string) {
	pamtest.LinuxPAMOnly(t, "module pam_faildelay and the fail delay")
	st := pamtest.New(t)
	svc := st.Service("delay",
		"auth optional pam_faildelay.so delay="+itoa(int(d.Microseconds())),
		"auth required pam_deny.so")
	return st, svc
}

type delayCall struct {
	status error
	delay  time.Duration
}

// libpam randomises a delay to between about 0.5 and 1.5 times the request.
func checkRandomised(t *testing.T, got, asked time.Duration) {
	t.Helper()
	if got < asked/2-time.Millisecond || got > asked*3/2+time.Millisecond {
		t.Errorf("delay %v is not within 0.5x..1.5x of %v", got, asked)
	}
}

func TestFailDelayDefaultWaitsInGo(t *testing.T) {
	const asked = 300 * time.Millisecond
	st, svc := delayStack(t, asked)
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	start := time.Now()
	err := h.Authenticate(context.Background(), 0)
	if !errors.Is(err, pam.ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	if took := time.Since(start); took < asked*2/5 {
		t.Errorf("failed authenticate returned after %v: the fail delay of %v was not applied", took, asked)
	}
}

func TestFailDelayCallbackReplacesSleep(t *testing.T) {
	const asked = 5 * time.Second
	st, svc := delayStack(t, asked)
	var calls []delayCall
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
		Delay: func(_ context.Context, status error, d time.Duration) { calls = append(calls, delayCall{status, d}) }})
	start := time.Now()
	err := h.Authenticate(context.Background(), 0)
	took := time.Since(start)
	if !errors.Is(err, pam.ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	if len(calls) != 1 {
		t.Fatalf("Delay called %d times, want 1", len(calls))
	}
	if !errors.Is(calls[0].status, pam.ErrAuth) {
		t.Errorf("Delay status %v, want ErrAuth", calls[0].status)
	}
	checkRandomised(t, calls[0].delay, asked)
	// The shortest sleep libpam could have chosen is half the request.
	if took >= asked/2 {
		t.Errorf("authenticate took %v: libpam slept although Config.Delay was set", took)
	}
}

func TestFailDelayCallbackOnSuccess(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the fail delay (Config.Delay)")
	st := pamtest.New(t)
	svc := st.Service("ok", "auth required pam_permit.so")
	var calls []delayCall
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
		Delay: func(_ context.Context, status error, d time.Duration) { calls = append(calls, delayCall{status, d}) }})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].status != nil {
		t.Fatalf("Delay calls %+v, want one with a nil status", calls)
	}
}

func TestFailDelayRaisesDelay(t *testing.T) {
	const module, app = 100 * time.Millisecond, 2 * time.Second
	st, svc := delayStack(t, module)
	var got time.Duration
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
		Delay: func(_ context.Context, _ error, d time.Duration) { got = d }})
	if err := h.FailDelay(app); err != nil {
		t.Fatal(err)
	}
	if err := h.Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	checkRandomised(t, got, app)
	if err := h.FailDelay(-time.Second); err == nil {
		t.Error("a negative delay was accepted")
	}
}

func TestFailDelayBlockingOption(t *testing.T) {
	const asked = 300 * time.Millisecond
	st, svc := delayStack(t, asked)
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), BlockingFailDelay: true})
	start := time.Now()
	if err := h.Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	if took := time.Since(start); took < asked*2/5 {
		t.Errorf("returned after %v: libpam did not sleep", took)
	}
}

func TestFailDelayWaitHonoursContext(t *testing.T) {
	const asked = 20 * time.Second
	st, svc := delayStack(t, asked)
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.Authenticate(ctx, 0)
	if !errors.Is(err, pam.ErrAuth) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrAuth wrapping the deadline", err)
	}
	if took := time.Since(start); took >= asked/2 {
		t.Errorf("waited %v despite the context", took)
	}
	// The handle is still usable: the delay ended, not the transaction.
	if _, err := h.Item(pam.ItemUser); err != nil {
		t.Errorf("handle unusable after a cut delay: %v", err)
	}
}

func TestExtensions(t *testing.T) {
	ext := pam.Extensions()
	want, ok := map[string][]string{
		"Linux-PAM": {pam.ExtBinaryPrompt, pam.ExtConfDir, pam.ExtConvAgain, pam.ExtFailDelay, pam.ExtUnsetenv, pam.ExtXAuthData},
		// OpenPAM 20190224: ConfDir through the path form of the service
		// name, pam_setenv, and nothing else.
		"OpenPAM": {pam.ExtConfDir, pam.ExtSetenv},
	}[pam.Implementation()]
	if !ok {
		t.Fatalf("unexpected implementation %q", pam.Implementation())
	}
	if !slices.Equal(ext, want) {
		t.Errorf("Extensions() on %s = %v, want %v", pam.Implementation(), ext, want)
	}
	for _, e := range want {
		if !pam.HasExtension(e) {
			t.Errorf("HasExtension(%q) is false", e)
		}
	}
}

// TestFailDelayHoldsNoThread: logins waiting out their fail delay hold
// neither an OS thread nor a call slot. libpam picks 10 to 30 s for the
// 20 s asked, so the look at the threads has ten seconds, against
// milliseconds of work; then the test ends the waits with their contexts.
func TestFailDelayHoldsNoThread(t *testing.T) {
	const asked, n = 20 * time.Second, 20
	st, svc := delayStack(t, asked)
	threads, slots := pam.ThreadsHeld(), pam.CallsInFlight()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started sync.WaitGroup
	started.Add(n)
	done := make(chan error, n)
	for range n {
		go func() {
			h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
			started.Done()
			if err != nil {
				done <- err
				return
			}
			err = h.Authenticate(ctx, 0)
			h.Close()
			done <- err
		}()
	}
	started.Wait()
	// Wait until all n wait out their delay (the counts alone are at their
	// baseline also before the logins' Authenticate began). libpam's
	// shortest delay is half the request: until then none returns.
	for pam.DelaysWaiting() != n || pam.ThreadsHeld() != threads || pam.CallsInFlight() != slots {
		if len(done) != 0 || time.Since(start) > asked/2-time.Second {
			t.Fatalf("while %d logins wait out their delay: %d waiting, %d threads and %d slots held, want %d, %d and %d; %d returned",
				n, pam.DelaysWaiting(), pam.ThreadsHeld(), pam.CallsInFlight(), n, threads, slots, len(done))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for range n {
		if err := <-done; !errors.Is(err, pam.ErrAuth) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want ErrAuth with the cancellation that cut the delay", err)
		}
	}
}

// TestFailDelayFullUnderParallelAttempts: a failed Authenticate whose
// context does not end returns no sooner than the delay libpam chose (read
// from what its PAM_FAIL_DELAY callback recorded, not guessed), also while
// many attempts run at once: the delay slows each client, it does not bound
// how many attempts run in parallel (see the package doc). Only lower
// bounds on time are checked, which a slow machine cannot break.
func TestFailDelayFullUnderParallelAttempts(t *testing.T) {
	const asked, n = 400 * time.Millisecond, 16
	st, svc := delayStack(t, asked)
	never, stop := context.WithCancel(context.Background()) // can end, never does
	defer stop()
	type result struct {
		took, chosen time.Duration
		err          error
	}
	results := make(chan result, n)
	began := time.Now()
	for i := range n {
		ctx := context.Background()
		if i%2 == 1 {
			ctx = never
		}
		go func() {
			h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
			if err != nil {
				results <- result{err: err}
				return
			}
			defer h.Close()
			start := time.Now()
			err = h.Authenticate(ctx, 0)
			took := time.Since(start)
			results <- result{took, pam.FailDelayChosen(h), err}
		}()
	}
	for range n {
		r := <-results
		if !errors.Is(r.err, pam.ErrAuth) {
			t.Fatalf("got %v, want ErrAuth", r.err)
		}
		checkRandomised(t, r.chosen, asked)
		if r.took < r.chosen {
			t.Errorf("a failed Authenticate returned after %v, before the %v delay libpam chose", r.took, r.chosen)
		}
	}
	t.Logf("%d parallel failed attempts, each delayed by about %v, took %v together", n, asked, time.Since(began))
}
