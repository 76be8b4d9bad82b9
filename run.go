package pam

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Run runs one whole PAM transaction: it starts it as described by cfg,
// calls fn with its handle, and ends it when fn returns, whatever fn does,
// panics included. It returns fn's error, else the error of Close.
//
// The transaction runs on one OS thread locked for its life, as with
// ThreadPerHandle, but that thread is the one fn's goroutine runs on: every
// call fn makes runs right there, sessions and credentials included, without
// the hand-off to a dedicated thread that a handle from Start pays on each
// call under ThreadPerHandle, and after its first credential or session call
// by default. A server that checks a login per request, or a login tool that
// opens a session, wants it.
// cfg.Threads must be ThreadDefault.
//
// When ctx can never end (context.Background), fn runs on the caller's
// goroutine. Otherwise fn runs on a goroutine of its own and Run waits for it
// or for ctx: a conversation sees ctx end as with any call, and if fn has
// not returned shortly after ctx ends (a module blocked in C), Run returns an
// error matching ErrClosed and wrapping ctx's cause; fn's later calls then
// return ErrClosed, and the transaction ends when the module and fn return.
// In that case fn must not touch what Run's caller uses after Run returns.
//
// The handle belongs to fn's goroutine: its methods return ErrNotOwner on
// any other, except Close, which makes the others return ErrClosed from then
// on. (Ownership is checked by thread id, on Linux only; elsewhere the
// caller must keep to it.) fn must not keep the handle after it returns, and
// must not unlock its thread (runtime.UnlockOSThread) more times than it
// locked it. A failed Authenticate or ChangeAuthTok that waits out its fail
// delay gives fn's thread and call slot back for the wait, until a credential
// or session call has run (the thread is still held if the caller had locked
// it before Run): fn goes on with another thread after it. Once a credential
// or session call has run, whose modules may leave state on the thread, Run
// does not unlock the thread at the end: it stays locked to fn's goroutine
// and ends with it (on the context.Background path, that is the caller's
// goroutine).
//
// The wait for a call slot (Config.Slots, SetMaxInFlight) is bounded by ctx
// and Config.SlotWait; without a slot Run returns an error matching
// ErrNoSlot and does nothing else. A panic in fn
// is returned as a *PanicError, with its stack, once the transaction has
// ended.
func Run(ctx context.Context, cfg Config, fn func(ctx context.Context, h *Handle) error) error {
	if fn == nil {
		return errors.New("pam: run: fn is nil")
	}
	if cfg.Threads != ThreadDefault {
		return &InputError{Op: "run", Field: "threads", Err: errors.New("Run chooses the thread itself; leave Config.Threads unset")}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Done() == nil {
		return runOwned(ctx, cfg, fn, nil)
	}
	if ctx.Err() != nil {
		// Given up already: no slot, no goroutine, nothing to abandon.
		return errorf("start: %w: the context ended: %w", ErrNoSlot, context.Cause(ctx))
	}
	sh := &runShared{}
	done := make(chan error, 1)
	go func() {
		returned := false
		defer func() {
			if !returned {
				done <- errors.New("pam: run: fn called runtime.Goexit")
			}
		}()
		err := runOwned(ctx, cfg, fn, sh)
		returned = true
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// A conversation that sees ctx end lets the module, then fn, return at
	// once: prefer fn's result to abandoning.
	t := time.NewTimer(abandonGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	sh.abandon()
	return errorf("run: %w: abandoned before fn returned: %w", ErrClosed, context.Cause(ctx))
}

// runShared lets Run abandon the transaction that runOwned runs on another
// goroutine.
type runShared struct {
	mu        sync.Mutex
	s         *state
	abandoned bool
}

// publish makes s reachable by abandon; it reports false if Run has already
// given up.
func (r *runShared) publish(s *state) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = s
	return !r.abandoned
}

// abandon refuses the transaction's later calls and cancels the one running.
func (r *runShared) abandon() {
	r.mu.Lock()
	r.abandoned = true
	s := r.s
	r.mu.Unlock()
	if s != nil {
		s.abandoned.Store(true)
		s.closing.Store(true)
		s.hold.abandon()
		s.cancelMu.Lock()
		if s.cancelOp != nil {
			s.cancelOp(ErrClosed)
		}
		s.cancelMu.Unlock()
	}
}

// runOwned is Run on the calling goroutine, which it locks to its thread for
// the transaction. sh is nil when nobody can abandon it.
func runOwned(ctx context.Context, cfg Config, fn func(context.Context, *Handle) error, sh *runShared) (err error) {
	cfg.Threads = threadRun
	s, err := newState(ctx, cfg) // takes a slot and locks this thread
	if err != nil {
		return err
	}
	h := &Handle{s: s}
	defer func() {
		cerr := s.closeAs(false, true)
		if !s.dirtyTID {
			// Else modules may have left state on the thread (credentials,
			// session contexts): it stays locked to this goroutine, and
			// ends with it, rather than serve other goroutines.
			runtime.UnlockOSThread()
		}
		s.hold.release()
		if err == nil {
			err = cerr
		}
	}()
	if sh != nil && !sh.publish(s) {
		return nil // Run has returned already: fn must not run
	}
	return callRun(ctx, fn, h)
}

// callRun calls Run's function, turning a panic into a PanicError.
func callRun(ctx context.Context, fn func(context.Context, *Handle) error, h *Handle) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errorf("run: %w", &PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	return fn(ctx, h)
}
