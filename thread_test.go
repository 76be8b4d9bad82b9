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
	"syscall"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestOneThreadPerHandle calls every operation of one handle from a
// different goroutine, each locked to its own thread, and checks with thread
// ids recorded by the C module where each call ran (a conversation of the
// program's own runs on a goroutine of its own, never on a caller's thread).
// By default, with a context that cannot end, Authenticate, AcctMgmt and
// ChangeAuthTok run on their caller's own thread, until the first credential
// call pins the handle to one dedicated thread. Under ThreadPerHandle
// (GOPAM_TEST_THREADS=strict) every call runs on one thread, none of the
// callers'.
func TestOneThreadPerHandle(t *testing.T) {
	st, svc, tids := tidStack(t)
	var convTID int
	conv := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		convTID = syscall.Gettid()
		return make([]pam.Response, len(msgs)), nil
	})
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
	ctx := context.Background()
	ops := []func() error{
		func() error { return h.Authenticate(ctx, 0) },
		func() error { return h.AcctMgmt(ctx, 0) },
		func() error { return h.ChangeAuthTok(ctx, 0) },
		func() error { return h.EstablishCredentials(ctx, 0) },
		func() error { return h.OpenSession(ctx, 0) },
		func() error { return h.ChangeAuthTok(ctx, 0) },
		func() error { return h.RefreshCredentials(ctx, 0) },
		func() error { return h.CloseSession(ctx, 0) },
		func() error { return h.DeleteCredentials(ctx, 0) },
	}
	const firstPinned = 3 // EstablishCredentials
	read := 0
	callers := map[int]bool{}
	var ran []int // the one thread each call ran on
	for i, op := range ops {
		caller := make(chan int)
		go func() {
			runtime.LockOSThread() // so that the caller surely is a thread of its own
			if err := op(); err != nil {
				t.Error(err)
			}
			caller <- syscall.Gettid()
		}()
		c := <-caller
		callers[c] = true
		data, err := os.ReadFile(tids)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(data[read:]))
		read = len(data)
		if len(fields) == 0 {
			t.Fatalf("op %d left no thread id", i)
		}
		if convTID == 0 || callers[convTID] {
			t.Fatalf("op %d: the conversation ran on thread %d, want one of its own", i, convTID)
		}
		threads := map[int]bool{}
		for j := 1; j < len(fields); j += 2 {
			n, err := strconv.Atoi(fields[j])
			if err != nil {
				t.Fatal(err)
			}
			threads[n] = true
		}
		if len(threads) != 1 {
			t.Fatalf("op %d ran on threads %v, want one", i, threads)
		}
		for tid := range threads {
			ran = append(ran, tid)
			inline := !strictSuite() && i < firstPinned
			if inline && tid != c {
				t.Errorf("op %d ran on thread %d, want its caller's %d", i, tid, c)
			}
			if !inline && tid == c {
				t.Errorf("op %d ran on its caller's thread %d, want the handle's own", i, tid)
			}
		}
	}
	from := 0
	if !strictSuite() {
		from = firstPinned
	}
	for i := from; i < len(ran); i++ {
		if ran[i] != ran[from] {
			t.Fatalf("calls ran on threads %v, want one from call %d on", ran, from)
		}
	}
	if len(callers) < 2 {
		t.Errorf("the callers ran on %d threads; the test needs them to move", len(callers))
	}
}

// tidLines reads the thread ids a tidfile holds, in order.
func tidLines(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	var out []int
	for j := 1; j < len(f); j += 2 {
		n, err := strconv.Atoi(f[j])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestDedicatedThreadServesOneHandle: by default, from a handle's first
// session or credential call on, its calls run on one dedicated thread that
// never serves another handle, and that thread ends with the transaction.
// Two handles overlap, each pinned to its thread; calls on a clean third
// handle meanwhile run on the caller's thread, never on either.
func TestDedicatedThreadServesOneHandle(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svcFor := func(name string) (string, string) {
		tids := st.File(name+".tids", "")
		args := mod + " tidfile=" + tids
		return st.Service(name, "auth required "+args, "account required "+args, "session required "+args,
			"password required "+args), tids
	}
	svcA, tidsA := svcFor("a")
	svcB, tidsB := svcFor("b")
	svcC, tidsC := svcFor("c")
	ctx := context.Background()
	start := func(svc string) *pam.Handle {
		return startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), Threads: pam.ThreadCaller})
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := start(svcA), start(svcB), start(svcC)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	me := syscall.Gettid()
	must(a.Authenticate(ctx, 0))
	must(a.OpenSession(ctx, 0))
	must(b.Authenticate(ctx, 0))
	must(b.EstablishCredentials(ctx, 0))
	must(c.Authenticate(ctx, 0))
	must(a.AcctMgmt(ctx, 0))
	must(b.OpenSession(ctx, 0))
	must(c.AcctMgmt(ctx, 0))
	must(a.CloseSession(ctx, 0))
	must(b.AcctMgmt(ctx, 0))
	ta, tb, tc := tidLines(t, tidsA), tidLines(t, tidsB), tidLines(t, tidsC)
	if ta[0] != me || tb[0] != me {
		t.Errorf("the first Authenticate of each handle ran on threads %d and %d, want the caller's %d", ta[0], tb[0], me)
	}
	pinnedA, pinnedB := ta[1], tb[1]
	for _, x := range ta[1:] {
		if x != pinnedA {
			t.Errorf("handle a ran on %v: want one thread from its session call on", ta)
		}
	}
	for _, x := range tb[1:] {
		if x != pinnedB {
			t.Errorf("handle b ran on %v: want one thread from its credential call on", tb)
		}
	}
	if pinnedA == me || pinnedB == me || pinnedA == pinnedB {
		t.Errorf("dedicated threads a %d, b %d, the caller %d: want three threads", pinnedA, pinnedB, me)
	}
	for _, x := range tc {
		if x != me {
			t.Errorf("the clean handle c ran on %v, want only the caller's thread %d", tc, me)
		}
	}
	// The dedicated threads end with their transactions.
	a.Close()
	b.Close()
	gone := func(tid int) bool {
		_, err := os.Stat("/proc/self/task/" + strconv.Itoa(tid))
		return os.IsNotExist(err)
	}
	waitUntil(t, func() bool { return gone(pinnedA) && gone(pinnedB) }, func() string {
		return "a dedicated thread outlived its transaction: thread " + itoa(pinnedA) + " or " + itoa(pinnedB) + " still exists"
	})
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
	svc := st.Service("prompt", promptLine(t), "account required pam_permit.so")
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
