package pam

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gopam/pam/internal/libpam"
)

// FailDelay asks for a delay of at least d after a failed Authenticate or
// ChangeAuthTok (pam_fail_delay). The transaction keeps the largest delay
// requested by the application and the modules; libpam randomises it (on
// Linux-PAM 1.5, between about half and one and a half times it). It returns an
// error matching ErrNotSupported where the implementation has no fail delay
// (OpenPAM).
func (h *Handle) FailDelay(d time.Duration) error {
	s := h.s
	if !s.lib.Has(libpam.FeatureFailDelay) {
		return notSupported("pam_fail_delay (Linux-PAM only)")
	}
	if d < 0 || d.Microseconds() > 1<<32-1 {
		return &InputError{Op: "fail_delay", Field: "delay", Err: fmt.Errorf("%v is out of range", d)}
	}
	return s.call("fail_delay", func() int { return s.lib.FailDelay(s.pamh, uint32(d.Microseconds())) })
}

// Delay records the delay libpam computed; it runs on the transaction's
// thread from the PAM_FAIL_DELAY trampoline, while the operation's caller
// waits.
func (s *state) Delay(status int, usec uint32) {
	s.delayed, s.delayCode, s.delayUsec = true, status, usec
}

// delaysWaiting counts the operations waiting out a fail delay in Go now,
// for the tests, which wait for it rather than for a time.
var delaysWaiting atomic.Int64

// applyDelay carries out the fail delay recorded during the last operation,
// on the caller's goroutine now that the PAM call has returned: it hands it to
// Config.Delay, or waits for it on failure until ctx ends. It returns the
// context's cause, as a *delayCutShort, if the wait was cut short.
func (s *state) applyDelay(ctx context.Context, rc int, opErr *Error) error {
	if !s.delayed {
		return nil
	}
	s.delayed = false
	d := time.Duration(s.delayUsec) * time.Microsecond
	if s.delayFn == nil && (rc == 0 || d <= 0) {
		return nil // nothing to hand over, nothing to wait for
	}
	if s.opLazy {
		ctx = s.opContext() // so that Close can end the wait or the DelayFunc
	}
	if s.delayFn != nil {
		var status error
		if opErr != nil {
			status = opErr.Code
		}
		// Marked as a callback, on a locked thread, so that a DelayFunc
		// that calls back into the handle gets ErrReentrant rather than a
		// deadlock.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		s.enterCallback()
		defer s.exitCallback()
		return callDelay(ctx, s.delayFn, status, d)
	}
	resume := s.leaveForDelay()
	defer resume()
	delaysWaiting.Add(1)
	defer delaysWaiting.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &delayCutShort{cause: context.Cause(ctx)}
	}
}

// callDelay calls a DelayFunc, turning a panic into a PanicError.
func callDelay(ctx context.Context, fn DelayFunc, status error, d time.Duration) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v}
		}
	}()
	fn(ctx, status, d)
	return nil
}
