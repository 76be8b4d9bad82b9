package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gopam/pam"
	mpam "github.com/msteinert/pam/v2"
)

// A txnCase is one kind of transaction: Start, one operation, End.
type txnCase struct {
	name    string
	service string
	op      int // opAuth or opChauthtok
	fails   bool
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

// gopamTxn runs one transaction of c with gopam's default settings
// (ThreadPerHandle) and context.Background().
func gopamTxn(s *stacks, c txnCase) error {
	return gopamTxnCtx(context.Background(), pam.ThreadDefault, s, c)
}

// gopamPerCallTxn runs one transaction of c with the ThreadPerCall policy and
// context.Background(), whose calls therefore run on the caller's own thread.
func gopamPerCallTxn(s *stacks, c txnCase) error {
	return gopamTxnCtx(context.Background(), pam.ThreadPerCall, s, c)
}

// gopamCtxTxn runs one transaction of c with default settings under a
// cancellable context with a deadline, as a server handling a request would.
func gopamCtxTxn(s *stacks, c txnCase) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return gopamTxnCtx(ctx, pam.ThreadDefault, s, c)
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
	case "gopam_percall":
		return gopamPerCallTxn
	case "gopam_ctx":
		return gopamCtxTxn
	case "gopam_run":
		return gopamRunTxn
	case "gopam_run_ctx":
		return gopamRunCtxTxn
	}
	return nil
}

// policyOf returns the thread policy of a gopam implementation.
func policyOf(im string) pam.ThreadPolicy {
	if im == "gopam_percall" {
		return pam.ThreadPerCall
	}
	return pam.ThreadDefault
}

func gopamTxnCtx(ctx context.Context, policy pam.ThreadPolicy, s *stacks, c txnCase) error {
	h, err := pam.StartContext(ctx, pam.Config{Service: c.service, User: benchUser, Conv: gopamConv, ConfDir: s.dir,
		Threads: policy})
	if err != nil {
		return err
	}
	if c.op == opChauthtok {
		err = h.ChangeAuthTok(ctx, 0)
	} else {
		err = h.Authenticate(ctx, 0)
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return expect(c, err, pam.ErrAuth)
}

// gopamRunTxnCtx runs one transaction of c with pam.Run and the same Config
// as gopamTxnCtx, less Threads, which Run chooses.
func gopamRunTxnCtx(ctx context.Context, s *stacks, c txnCase) error {
	err := pam.Run(ctx, pam.Config{Service: c.service, User: benchUser, Conv: gopamConv, ConfDir: s.dir},
		func(ctx context.Context, h *pam.Handle) error {
			if c.op == opChauthtok {
				return h.ChangeAuthTok(ctx, 0)
			}
			return h.Authenticate(ctx, 0)
		})
	return expect(c, err, pam.ErrAuth)
}

// msteinertTxn runs one transaction of c with msteinert/pam.
func msteinertTxn(s *stacks, c txnCase) error {
	t, err := mpam.StartConfDir(c.service, benchUser, msteinertConv, s.dir)
	if err != nil {
		return err
	}
	if c.op == opChauthtok {
		err = t.ChangeAuthTok(0)
	} else {
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
// (workers == 1) or spread over workers goroutines or threads.
type impl struct {
	name string
	run  func(n, workers int) error
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
	if len(onlyImpls) > 0 {
		out = slices.DeleteFunc(out, func(im impl) bool { return !slices.Contains(onlyImpls, im.name) })
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
	out := []impl{
		{"c", func(n, workers int) error {
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
		}},
		{"gopam", goPar(gopamTxn)},
		{"gopam_percall", goPar(gopamPerCallTxn)},
		{"gopam_run", goPar(gopamRunTxn)},
		{"msteinert", goPar(msteinertTxn)},
	}
	if withVariants {
		out = append(out,
			impl{"gopam_ctx", goPar(gopamCtxTxn)},
			impl{"gopam_run_ctx", goPar(gopamRunCtxTxn)},
			impl{"c_txn", func(n, _ int) error {
				for range n {
					if !ct.one() {
						return fmt.Errorf("%s: C (per transaction): unexpected status", c.name)
					}
				}
				return nil
			}},
			impl{"c_call", func(n, _ int) error {
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
