package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gopam/pam"
	mpam "github.com/msteinert/pam/v2"
)

// A txnCase is one kind of transaction: Start, one operation, End.
type txnCase struct {
	name    string
	service string
	op      int // opAuth, opChauthtok or opLogin
	fails   bool
	only    []string // the implementations measured (nil: all)
}

// gopamConv answers every prompt with benchAnswer, in a fresh slice gopam may
// wipe, and other messages with nothing.
var gopamConv = pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
	rs := make([]pam.Response, len(msgs))
	for i, m := range msgs {
		if m.Style.IsPrompt() {
			rs[i].Data = []byte(benchAnswer)
		}
	}
	return rs, nil
})

// msteinertConv does the same for msteinert/pam, one message at a time.
var msteinertConv = mpam.ConversationFunc(func(s mpam.Style, _ string) (string, error) {
	if s == mpam.PromptEchoOff || s == mpam.PromptEchoOn {
		return benchAnswer, nil
	}
	return "", nil
})

// gopamTxn runs one transaction of c with gopam's default settings and
// context.Background(): every call before a credential or session call runs
// on the caller's own thread, with no hand-off.
func gopamTxn(s *stacks, c txnCase) error {
	return gopamTxnCtx(context.Background(), s, c)
}

// gopamCtxTxn runs one transaction of c with default settings under a
// cancellable context with a deadline, as a server handling a request would.
func gopamCtxTxn(s *stacks, c txnCase) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return gopamTxnCtx(ctx, s, c)
}

// gopamRunTxn runs one transaction of c with pam.Run and
// context.Background(): the whole transaction runs on the caller's
// goroutine, its thread locked for it, with no hand-off.
func gopamRunTxn(s *stacks, c txnCase) error {
	return gopamRunTxnCtx(context.Background(), s, c)
}

// gopamRunCtxTxn runs one transaction of c with pam.Run under a cancellable
// context with a deadline: Run then runs the transaction on a goroutine of
// its own.
func gopamRunCtxTxn(s *stacks, c txnCase) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return gopamRunTxnCtx(ctx, s, c)
}

// gopamTxnFor returns the transaction function of a gopam implementation, or
// nil for another name.
func gopamTxnFor(im string) func(*stacks, txnCase) error {
	switch im {
	case "gopam":
		return gopamTxn
	case "gopam_ctx":
		return gopamCtxTxn
	case "gopam_run":
		return gopamRunTxn
	case "gopam_run_ctx":
		return gopamRunCtxTxn
	}
	return nil
}

func gopamTxnCtx(ctx context.Context, s *stacks, c txnCase) error {
	h, err := pam.StartContext(ctx, pam.Config{Service: c.service, User: s.userFor(c.service), Conv: gopamConv,
		ConfDir: s.dir})
	if err != nil {
		return err
	}
	err = gopamOp(ctx, h, c.op)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return expect(c, err, pam.ErrAuth)
}

// gopamOp runs the operations of a case's transaction on h.
func gopamOp(ctx context.Context, h *pam.Handle, op int) error {
	switch op {
	case opChauthtok:
		return h.ChangeAuthTok(ctx, 0)
	case opLogin:
		for _, f := range []func(context.Context, pam.Flags) error{h.Authenticate, h.AcctMgmt, h.OpenSession, h.CloseSession} {
			if err := f(ctx, 0); err != nil {
				return err
			}
		}
		return nil
	}
	return h.Authenticate(ctx, 0)
}

// gopamRunTxnCtx runs one transaction of c with pam.Run and the same Config
// as gopamTxnCtx, less Threads, which Run chooses.
func gopamRunTxnCtx(ctx context.Context, s *stacks, c txnCase) error {
	err := pam.Run(ctx, pam.Config{Service: c.service, User: s.userFor(c.service), Conv: gopamConv, ConfDir: s.dir},
		func(ctx context.Context, h *pam.Handle) error { return gopamOp(ctx, h, c.op) })
	return expect(c, err, pam.ErrAuth)
}

// msteinertTxn runs one transaction of c with msteinert/pam.
func msteinertTxn(s *stacks, c txnCase) error {
	t, err := mpam.StartConfDir(c.service, s.userFor(c.service), msteinertConv, s.dir)
	if err != nil {
		return err
	}
	switch c.op {
	case opChauthtok:
		err = t.ChangeAuthTok(0)
	case opLogin:
		for _, f := range []func(mpam.Flags) error{t.Authenticate, t.AcctMgmt, t.OpenSession, t.CloseSession} {
			if err = f(0); err != nil {
				break
			}
		}
	default:
		err = t.Authenticate(0)
	}
	if eerr := t.End(); err == nil {
		err = eerr
	}
	return expect(c, err, mpam.ErrAuth)
}

// expect turns the outcome of a transaction into an error when it is not the
// one the case expects.
func expect(c txnCase, err, authErr error) error {
	if !c.fails {
		return err
	}
	if errors.Is(err, authErr) {
		return nil
	}
	return fmt.Errorf("%s: want an authentication error, got %v", c.name, err)
}

// goLoop runs n transactions with one of the Go implementations.
func goLoop(txn func(*stacks, txnCase) error, s *stacks, c txnCase, n int) error {
	for range n {
		if err := txn(s, c); err != nil {
			return err
		}
	}
	return nil
}

// An impl runs n transactions of its case in a row on the calling goroutine
// (workers == 1) or spread over workers goroutines or threads. prep readies
// the process for a measured run, as the implementation's own program would
// be (the module cache, modules held loaded); post undoes it. Neither is
// timed.
type impl struct {
	name string
	run  func(n, workers int) error
	prep func() error
	post func()
}

// measured runs im: prep, then timed (which calls run inside what it
// times), then post.
func (im impl) measured(n, workers int, timed func(run func() error) error) error {
	if im.prep != nil {
		if err := im.prep(); err != nil {
			return err
		}
	}
	err := timed(func() error { return im.run(n, workers) })
	if im.post != nil {
		im.post()
	}
	return err
}

func cExpect(c txnCase) int {
	if c.fails {
		return cAuthErr
	}
	return cSuccess
}

// implsFor returns the implementations measured for c: the C loop (one
// foreign call per batch), the C transaction called once per transaction and
// once per PAM call from Go, gopam under each thread policy and with Run, and
// msteinert/pam.
func implsFor(s *stacks, c txnCase, withVariants bool) []impl {
	out := allImplsFor(s, c, withVariants)
	if c.only != nil {
		out = slices.DeleteFunc(out, func(im impl) bool { return !slices.Contains(c.only, im.name) })
	}
	if len(onlyImpls) > 0 {
		out = slices.DeleteFunc(out, func(im impl) bool { return !slices.Contains(onlyImpls, im.name) })
	}
	for i := range out {
		out[i].prep = isolate(s, c, out[i])
	}
	return out
}

// isolate returns im's prep wrapped so that each implementation runs as its
// own program would: gopam's with the module cache on and warm (one untimed
// transaction), every other with the cache off and none of the stack's
// modules mapped, which it checks, before its own prep.
func isolate(s *stacks, c txnCase, im impl) func() error {
	return func() error {
		mods, err := s.modules(c.service)
		if err != nil {
			return err
		}
		if txn := gopamTxnFor(im.name); txn != nil {
			if !pam.SetModuleCache(true) {
				return fmt.Errorf("%s: the module cache cannot be turned on", im.name)
			}
			return txn(s, c)
		}
		pam.SetModuleCache(false)
		if m := mappedOf(mods); len(m) > 0 {
			return fmt.Errorf("%s: %s still mapped before its run", im.name, strings.Join(m, ", "))
		}
		if im.prep != nil {
			return im.prep()
		}
		return nil
	}
}

// mappedOf returns the paths among paths that the process has mapped.
func mappedOf(paths []string) []string {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	mapped := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 6 {
			mapped[f[5]] = true
		}
	}
	var out []string
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if mapped[p] || mapped[real] {
			out = append(out, p)
		}
	}
	return out
}

// onlyImpls, when not empty, restricts the timing cases to these
// implementations (-impls).
var onlyImpls []string

func allImplsFor(s *stacks, c txnCase, withVariants bool) []impl {
	ct := newCTxn(s, c.service, c.op, cExpect(c))
	goPar := func(txn func(*stacks, txnCase) error) func(n, workers int) error {
		return func(n, workers int) error {
			if workers == 1 {
				return goLoop(txn, s, c, n)
			}
			errs := make(chan error, workers)
			for range workers {
				go func() { errs <- goLoop(txn, s, c, n) }()
			}
			var all []error
			for range workers {
				all = append(all, <-errs)
			}
			return errors.Join(all...)
		}
	}
	cRun := func(n, workers int) error {
		var bad int
		if workers == 1 {
			bad = ct.loop(n)
		} else {
			bad = ct.parallel(n, workers)
		}
		if bad != 0 {
			return fmt.Errorf("%s: C: %d unexpected statuses", c.name, bad)
		}
		return nil
	}
	var held heldModules
	out := []impl{
		{name: "c", run: cRun},
		{name: "c_warm", run: cRun, prep: func() error {
			mods, err := s.modules(c.service)
			if err != nil {
				return err
			}
			held, err = holdModules(mods)
			return err
		}, post: func() { held.release() }},
		{name: "gopam", run: goPar(gopamTxn)},
		{name: "gopam_run", run: goPar(gopamRunTxn)},
		{name: "msteinert", run: goPar(msteinertTxn)},
	}
	if withVariants {
		out = append(out,
			impl{name: "gopam_ctx", run: goPar(gopamCtxTxn)},
			impl{name: "gopam_run_ctx", run: goPar(gopamRunCtxTxn)},
			impl{name: "c_txn", run: func(n, _ int) error {
				for range n {
					if !ct.one() {
						return fmt.Errorf("%s: C (per transaction): unexpected status", c.name)
					}
				}
				return nil
			}},
			impl{name: "c_call", run: func(n, _ int) error {
				for range n {
					if !ct.split() {
						return fmt.Errorf("%s: C (per call): unexpected status", c.name)
					}
				}
				return nil
			}},
		)
	}
	return out
}
