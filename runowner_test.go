package pam_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// rounds counts the failed logins of TestRegressRunCloseDuringRebind. It is
// shared without synchronisation on purpose, through functions the race
// detector does not instrument: a synchronised counter would order the
// closer after the handle's own writes and hide the race the test looks for.
//
//go:norace
func bumpRounds(p *int) { *p++ }

//go:norace
func peekRounds(p *int) int { return *p }

// TestRegressRunCloseDuringRebind: Close from another goroutine (which Run's
// doc allows) while the handle gives its thread back for fail delays and
// takes one again must not race with that (run it under -race), must refuse
// the function's later calls, and must leave the ending of the transaction
// to Run.
func TestRegressRunCloseDuringRebind(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("deny", "auth required pam_deny.so")
	cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()}
	live, slots := pam.LiveTransactions(), pam.CallsInFlight()
	var rounds int
	closed := make(chan error, 1)
	failed := 0
	err := pam.Run(context.Background(), cfg, func(ctx context.Context, h *pam.Handle) error {
		go func() {
			// Wait until fail delays have made the handle re-bind its
			// thread, seen without synchronising with it.
			for peekRounds(&rounds) < 2 {
				time.Sleep(time.Millisecond)
			}
			closed <- h.Close()
		}()
		for {
			if err := h.FailDelay(time.Millisecond); err != nil {
				if errors.Is(err, pam.ErrClosed) {
					return nil
				}
				return err
			}
			err := h.Authenticate(ctx, 0)
			switch {
			case errors.Is(err, pam.ErrClosed):
				return nil
			case !errors.Is(err, pam.ErrAuth):
				return err
			}
			failed++
			bumpRounds(&rounds)
		}
	})
	if errors.Is(err, pam.ErrNotSupported) {
		t.Skip("no fail delay in this PAM implementation (Linux-PAM only): nothing re-binds")
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("close from another goroutine: %v", err)
	}
	if failed < 2 {
		t.Errorf("%d failed logins before Close, want 2 or more", failed)
	}
	waitLive(t, live)
	if n := pam.CallsInFlight(); n != slots {
		t.Errorf("%d call slots held after Run, want %d", n, slots)
	}
}
