package pam_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestOneThreadPerHandle calls every operation of one handle from a
// different goroutine, each locked to its own thread, and checks with thread
// ids recorded by the C module and by the conversation that every PAM call and
// callback ran on one thread, which is none of the callers'.
func TestOneThreadPerHandle(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	tids := st.File("tids", "")
	args := mod + " tidfile=" + tids + " nmsg=1"
	svc := st.Service("tids",
		"auth required "+args, "account required "+args,
		"session required "+args, "password required "+args)
	var convMu sync.Mutex
	var convTIDs []int
	conv := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		convMu.Lock()
		convTIDs = append(convTIDs, syscall.Gettid())
		convMu.Unlock()
		return make([]pam.Response, len(msgs)), nil
	})
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ops := []func() error{
		func() error { return h.Authenticate(ctx, 0) },
		func() error { return h.AcctMgmt(ctx, 0) },
		func() error { return h.EstablishCredentials(ctx, 0) },
		func() error { return h.OpenSession(ctx, 0) },
		func() error { return h.ChangeAuthTok(ctx, 0) },
		func() error { return h.RefreshCredentials(ctx, 0) },
		func() error { return h.CloseSession(ctx, 0) },
		func() error { return h.DeleteCredentials(ctx, 0) },
	}
	callers := map[int]bool{}
	for _, op := range ops {
		tid := make(chan int)
		go func() {
			runtime.LockOSThread() // so that the caller surely is a thread of its own
			if err := op(); err != nil {
				t.Error(err)
			}
			tid <- syscall.Gettid()
		}()
		callers[<-tid] = true
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tids)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	if len(lines) < 2*len(ops) {
		t.Fatalf("tid file has %d fields, want one line per call:\n%s", len(lines), data)
	}
	all := map[int]bool{}
	for i := 1; i < len(lines); i += 2 {
		n, err := strconv.Atoi(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		all[n] = true
	}
	for _, n := range convTIDs {
		all[n] = true
	}
	if len(convTIDs) < len(ops) {
		t.Errorf("%d conversation calls, want at least %d", len(convTIDs), len(ops))
	}
	if len(all) != 1 {
		t.Fatalf("the handle's calls ran on threads %v, want one", all)
	}
	for tid := range all {
		if callers[tid] {
			t.Errorf("the handle ran on caller thread %d", tid)
		}
	}
	if len(callers) < 2 {
		t.Errorf("the callers ran on %d threads; the test needs them to move", len(callers))
	}
}

// TestManyGoroutines runs 100 goroutines of 100 transactions each.
func TestManyGoroutines(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("many", "auth required pam_permit.so", "account required pam_permit.so",
		"session required pam_permit.so")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 100 {
		wg.Go(func() {
			for i := range 100 {
				h, err := pam.Start(pam.Config{Service: svc, User: "u" + strconv.Itoa(g), ConfDir: st.Dir(), Conv: pam.Answers()})
				if err != nil {
					errs <- err
					return
				}
				err = h.Login(context.Background(), 0)
				if err == nil && i%10 == 0 {
					err = h.Env().Set("N", strconv.Itoa(i))
				}
				if cerr := h.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCloseRacesOperation closes handles while their operations wait in the
// conversation or run, from other goroutines.
func TestCloseRacesOperation(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("stress", "auth required pam_stress.so", "account required pam_permit.so")
	live := pam.LiveTransactions()

	// Close while the conversation waits: the operation is cancelled.
	waiting := make(chan struct{})
	conv := pam.ConversationFunc(func(ctx context.Context, _ []pam.Message) ([]pam.Response, error) {
		close(waiting)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- h.Authenticate(context.Background(), 0) }()
	<-waiting
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, pam.ErrClosed) {
		t.Errorf("the interrupted operation returned %v, want ErrClosed", err)
	}

	// Random interleavings, for the race detector.
	var wg sync.WaitGroup
	for i := range 50 {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers([]byte("pw"))})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			err := h.Login(context.Background(), 0)
			if err != nil && !errors.Is(err, pam.ErrClosed) {
				t.Errorf("login: %v", err)
			}
		})
		wg.Go(func() {
			time.Sleep(time.Duration(i%5) * 50 * time.Microsecond)
			if err := h.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			h.Close()
		})
	}
	wg.Wait()
	waitLive(t, live)
}

// TestDroppedHandleIsEnded: a handle dropped without Close is ended by the
// runtime cleanup.
func TestDroppedHandleIsEnded(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("drop", "auth required pam_permit.so")
	live := pam.LiveTransactions()
	func() {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Authenticate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}()
	if pam.LiveTransactions() != live+1 {
		t.Fatalf("%d live transactions, want %d", pam.LiveTransactions(), live+1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pam.LiveTransactions() > live {
		if time.Now().After(deadline) {
			t.Fatal("the dropped handle was never ended")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
