package pam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Dialog runs PAM operations in the background and hands their prompts to
// the caller one batch at a time, to be answered later from any goroutine. It
// is the conversation a request/response server needs: a web login shows the
// password prompt in one response, receives the password in the next request,
// then shows the one-time-code prompt, and so on, while the PAM transaction
// waits in between.
//
//	d, err := pam.StartDialog(pam.Config{Service: "web", User: name}, time.Minute,
//		func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
//	step, err := d.Next(ctx)      // request 1: render step.Prompts
//	err = d.Answer(responses)     // request 2: the user's answers
//	step, err = d.Next(ctx)       // more prompts, or step.Done
//
// A Dialog that nobody answers for longer than its idle timeout is abandoned:
// the pending conversation fails with ErrIdleTimeout, the operations end, and
// the handle is closed. A Dialog is safe for concurrent use.
type Dialog struct {
	idle    time.Duration
	steps   chan Step       // batches waiting for Next
	answers chan []Response // answers waiting for the conversation
	done    chan struct{}   // closed when run has returned and the handle is closed
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	expired bool      // the idle timeout struck: every later prompt fails
	info    []Message // messages that needed no answer, not yet handed out
	current *Step     // the batch handed out by Next and not yet answered
	result  error
}

// Step is what Next returns: either a batch of prompts to answer, or the end.
type Step struct {
	// Info holds messages that needed no answer (TextInfo, ErrorMsg), sent
	// since the previous step. Show them before the prompts.
	Info []Message
	// Prompts is the batch to answer: Answer takes one Response per element,
	// in order (responses to its non-prompt messages are ignored). Empty when
	// Done.
	Prompts []Message
	// Done is set when the operations have ended; Err is then their result
	// (nil on success).
	Done bool
	Err  error
}

// ErrIdleTimeout is the cause of the failure of a Dialog that was not
// answered within its idle timeout.
var ErrIdleTimeout = errors.New("pam: dialog idle timeout: no answer came in time")

// ErrDialogCancelled is the cause of the failure of a cancelled Dialog.
var ErrDialogCancelled = errors.New("pam: dialog cancelled")

// ErrNotWaiting is returned by Answer when the dialog has no batch waiting
// for answers.
var ErrNotWaiting = errors.New("pam: the dialog is not waiting for answers")

// StartDialog starts cfg's transaction with the dialog as its conversation
// (cfg.Conv must be nil) and runs run with the handle in the background. run
// performs the operations, such as h.Login; the handle is closed when run
// returns. idle bounds how long a batch may wait for Next and then Answer
// (zero means one minute).
func StartDialog(cfg Config, idle time.Duration, run func(ctx context.Context, h *Handle) error) (*Dialog, error) {
	if cfg.Conv != nil {
		return nil, errors.New("pam: start dialog: Config.Conv must be nil: the dialog is the conversation")
	}
	if run == nil {
		return nil, errors.New("pam: start dialog: run is nil")
	}
	if idle <= 0 {
		idle = time.Minute
	}
	d := &Dialog{idle: idle, steps: make(chan Step), answers: make(chan []Response), done: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(context.Background())
	d.cancel = cancel
	cfg.Conv = d
	h, err := StartContext(ctx, cfg)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	go func() {
		err := run(ctx, h)
		if cerr := h.Close(); err == nil {
			err = cerr
		}
		cancel(nil)
		d.mu.Lock()
		d.result = err
		d.mu.Unlock()
		close(d.done)
	}()
	return d, nil
}

// Converse is the dialog's side of the conversation: it runs on the
// transaction's thread and waits for Next and Answer.
func (d *Dialog) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	prompt := false
	for _, m := range msgs {
		prompt = prompt || m.Style.IsPrompt()
	}
	d.mu.Lock()
	if d.expired {
		d.mu.Unlock()
		return nil, ErrIdleTimeout
	}
	if !prompt {
		d.info = append(d.info, msgs...)
		d.mu.Unlock()
		return make([]Response, len(msgs)), nil
	}
	st := Step{Info: d.info, Prompts: msgs}
	d.info = nil
	d.mu.Unlock()

	timer := time.NewTimer(d.idle)
	defer timer.Stop()
	select {
	case d.steps <- st:
	case <-timer.C:
		return nil, d.expire()
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	timer.Reset(d.idle)
	select {
	case r := <-d.answers:
		return r, nil
	case <-timer.C:
		return nil, d.expire()
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// expire records that the idle timeout struck, so that modules later in
// the stack fail at once instead of waiting again.
func (d *Dialog) expire() error {
	d.mu.Lock()
	d.expired = true
	d.current = nil
	d.mu.Unlock()
	return ErrIdleTimeout
}

// Next waits for the next batch of prompts, or for the end of the
// operations. ctx bounds only this wait: when it ends, Next returns its error
// and the dialog goes on. After the end, Next keeps returning the final step.
func (d *Dialog) Next(ctx context.Context) (Step, error) {
	d.mu.Lock()
	if d.current != nil {
		st := *d.current
		d.mu.Unlock()
		return st, nil
	}
	d.mu.Unlock()
	select {
	case st := <-d.steps:
		d.mu.Lock()
		d.current = &st
		d.mu.Unlock()
		return st, nil
	case <-d.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		st := Step{Info: d.info, Done: true, Err: d.result}
		return st, nil
	case <-ctx.Done():
		return Step{}, ctx.Err()
	}
}

// Answer answers the batch the last Next returned, one Response per message
// of Step.Prompts. The dialog wipes the responses' Data once libpam has it.
func (d *Dialog) Answer(resps []Response) error {
	d.mu.Lock()
	cur := d.current
	if cur == nil {
		d.mu.Unlock()
		wipeResponses(resps)
		return ErrNotWaiting
	}
	if len(resps) != len(cur.Prompts) {
		d.mu.Unlock()
		wipeResponses(resps)
		return fmt.Errorf("pam: dialog: %d responses for %d messages", len(resps), len(cur.Prompts))
	}
	d.current = nil
	d.mu.Unlock()
	select {
	case d.answers <- resps:
		return nil
	case <-d.done:
		wipeResponses(resps)
		return ErrNotWaiting
	}
}

// Cancel abandons the dialog: a pending conversation fails with
// ErrDialogCancelled, the operations end and the handle is closed. It does not
// wait; Done tells when all is over.
func (d *Dialog) Cancel() {
	d.cancel(ErrDialogCancelled)
}

// Done returns a channel that is closed once the operations have ended and
// the handle is closed.
func (d *Dialog) Done() <-chan struct{} { return d.done }

// Err returns the operations' result once Done is closed, and nil before.
func (d *Dialog) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.result
}
