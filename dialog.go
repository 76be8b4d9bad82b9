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
//	d, err := pam.StartDialog(ctx, pam.Config{Service: "web", User: name}, time.Minute,
//		func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
//	step, err := d.Next(ctx)              // request 1: render step.Info and step.Prompts
//	err = d.Answer(step.Seq, responses)   // request 2: the user's answers
//	step, err = d.Next(ctx)               // more prompts, or step.Done
//
// A Dialog that nobody answers for longer than its idle timeout is abandoned:
// the pending conversation fails with ErrIdleTimeout, the operations end, and
// the handle is closed. While it waits for an answer, a dialog holds one of
// the PAM call slots that SetMaxInFlight bounds, so a server should also
// bound how many dialogs it keeps open. A Dialog is safe for concurrent use.
type Dialog struct {
	idle   time.Duration
	done   chan struct{}
	cancel context.CancelCauseFunc
	// expire is closed by Expire: it strikes the idle timeout now.
	expire     chan struct{}
	expireOnce sync.Once

	mu      sync.Mutex
	seq     uint64        // the Seq of the last batch
	expired bool          // the idle timeout struck: every later prompt fails
	info    []Message     // messages that needed no answer, not yet handed out
	current *Step         // the batch waiting for an answer, owned by Converse
	answers chan answer   // where current's answer goes
	gone    chan struct{} // closed when Converse stops waiting for current
	changed chan struct{} // closed and replaced when current or done changes
	result  error
}

type answer struct {
	resps []Response
	err   error
}

// Step is what Next returns: either a batch of prompts to answer, or the end.
type Step struct {
	// Seq numbers the batch; Answer and Fail take it, so that a late or
	// repeated answer (a double submit, the back button) cannot answer the
	// wrong batch.
	Seq uint64
	// Info holds messages that needed no answer (TextInfo, ErrorMsg) and
	// came in batches of their own since the previous step. Show them
	// before the prompts.
	Info []Message
	// Prompts is the batch to answer, exactly as the module sent it: it
	// holds at least one prompt, and may hold TextInfo and ErrorMsg
	// messages too, in order, to be shown where they stand. Answer takes
	// one Response per element. Empty when Done.
	Prompts []Message
	// Deadline is when the idle timeout abandons this batch.
	Deadline time.Time
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

// ErrNotWaiting is returned by Answer and Fail when the dialog has no batch
// waiting for answers: it was answered already, or the operations ended.
var ErrNotWaiting = errors.New("pam: the dialog is not waiting for answers")

// ErrStaleAnswer is returned by Answer and Fail for a Seq other than the
// waiting batch's.
var ErrStaleAnswer = errors.New("pam: the answer is for another batch of the dialog")

// StartDialog starts cfg's transaction with the dialog as its conversation
// (cfg.Conv must be nil) and runs run with the handle in the background. run
// performs the operations, such as h.Login, and may read what the caller
// needs afterwards (h.Item(ItemUser), h.Env()) before it returns; the handle
// is closed when run returns. ctx bounds only the start, including the wait
// for a PAM call slot. idle bounds how long a batch may wait for Next and
// then Answer (zero means one minute).
func StartDialog(ctx context.Context, cfg Config, idle time.Duration, run func(ctx context.Context, h *Handle) error) (*Dialog, error) {
	if cfg.Conv != nil {
		return nil, errors.New("pam: start dialog: Config.Conv must be nil: the dialog is the conversation")
	}
	if run == nil {
		return nil, errors.New("pam: start dialog: run is nil")
	}
	// The dialog is a conversation of the program's own: the rule of
	// Config.User applies as if cfg.Conv were set.
	if _, err := startUser("start dialog", cfg, true); err != nil {
		return nil, err
	}
	if idle <= 0 {
		idle = time.Minute
	}
	d := &Dialog{idle: idle, done: make(chan struct{}), changed: make(chan struct{}), expire: make(chan struct{})}
	runCtx, cancel := context.WithCancelCause(context.Background())
	d.cancel = cancel
	cfg.Conv = dialogConv{d}
	h, err := StartContext(ctx, cfg)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	go func() {
		err := run(runCtx, h)
		if cerr := h.Close(); err == nil {
			err = cerr
		}
		cancel(nil)
		d.mu.Lock()
		d.result = err
		close(d.done)
		d.notifyLocked()
		d.mu.Unlock()
	}()
	return d, nil
}

// dialogConv is the dialog's side of the conversation; it runs on the
// transaction's thread and waits for Next and Answer.
type dialogConv struct{ d *Dialog }

func (c dialogConv) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	d := c.d
	prompt := false
	for _, m := range msgs {
		prompt = prompt || m.Style.IsPrompt()
	}
	d.mu.Lock()
	if d.expired {
		d.mu.Unlock()
		return nil, ErrIdleTimeout
	}
	if err := context.Cause(ctx); err != nil || d.ended() {
		// A module that goes on after its call was abandoned must not
		// show a batch that nobody can answer any more.
		d.mu.Unlock()
		if err == nil {
			err = ErrNotWaiting
		}
		return nil, err
	}
	if !prompt {
		d.info = append(d.info, msgs...)
		d.mu.Unlock()
		return make([]Response, len(msgs)), nil
	}
	d.seq++
	st := &Step{Seq: d.seq, Info: d.info, Prompts: msgs, Deadline: time.Now().Add(d.idle)}
	gone, answers := make(chan struct{}), make(chan answer)
	d.info, d.current, d.gone, d.answers = nil, st, gone, answers
	d.notifyLocked()
	d.mu.Unlock()

	// However it ends, this batch is no longer waiting afterwards.
	defer func() {
		d.mu.Lock()
		if d.current == st {
			d.current = nil
			d.notifyLocked()
		}
		close(gone)
		d.mu.Unlock()
	}()
	timer := time.NewTimer(d.idle)
	defer timer.Stop()
	select {
	case a := <-answers:
		return a.resps, a.err
	case <-timer.C:
		d.mu.Lock()
		d.expired = true
		d.mu.Unlock()
		return nil, ErrIdleTimeout
	case <-d.expire:
		return nil, ErrIdleTimeout
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// ended reports whether the operations have ended. The caller holds d.mu,
// under which done is closed.
func (d *Dialog) ended() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// notifyLocked wakes the callers of Next. The caller holds d.mu.
func (d *Dialog) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Next waits for the next batch of prompts, or for the end of the
// operations, and returns it. Until that batch is answered, Next returns it
// again. ctx bounds only this wait: when it ends, Next returns its error and
// the dialog goes on. After the end, Next keeps returning the final step.
func (d *Dialog) Next(ctx context.Context) (Step, error) {
	for {
		d.mu.Lock()
		select {
		case <-d.done:
			st := Step{Seq: d.seq, Info: d.info, Done: true, Err: d.result}
			d.mu.Unlock()
			return st, nil
		default:
		}
		if d.current != nil {
			st := *d.current
			d.mu.Unlock()
			return st, nil
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Step{}, ctx.Err()
		}
	}
}

// Answer answers the batch numbered seq, which Next returned, with one
// Response per message of its Prompts. The dialog wipes the responses' Data
// once libpam has it, and also when it refuses them. It returns an error
// matching ErrIdleTimeout when the batch was abandoned, ErrStaleAnswer for
// another batch's seq, and ErrNotWaiting when nothing waits for an answer.
func (d *Dialog) Answer(seq uint64, resps []Response) error {
	ch, gone, err := d.take(seq, len(resps))
	if err != nil {
		wipeResponses(resps)
		return err
	}
	return d.send(ch, gone, answer{resps: resps})
}

// Fail answers the batch numbered seq with a conversation failure: the
// module sees PAM_CONV_ERR and the stack decides what follows, as it would
// for a user who cannot answer (a browser facing a binary prompt, say). err
// is wrapped by the operation's error if the operation fails.
func (d *Dialog) Fail(seq uint64, err error) error {
	if err == nil {
		err = errors.New("the dialog declined the prompt")
	}
	ch, gone, terr := d.take(seq, -1)
	if terr != nil {
		return terr
	}
	return d.send(ch, gone, answer{err: err})
}

// take claims the waiting batch for an answer of n responses (n < 0: any)
// and returns where its answer goes and the channel closed when its
// conversation stops waiting.
func (d *Dialog) take(seq uint64, n int) (chan answer, chan struct{}, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.current
	switch {
	case d.expired:
		return nil, nil, errorf("%w: %w", ErrNotWaiting, ErrIdleTimeout)
	case cur == nil || d.ended():
		return nil, nil, ErrNotWaiting
	case cur.Seq != seq:
		return nil, nil, fmt.Errorf("%w: got %d, waiting for %d", ErrStaleAnswer, seq, cur.Seq)
	case n >= 0 && n != len(cur.Prompts):
		return nil, nil, fmt.Errorf("pam: dialog: %d responses for %d messages", n, len(cur.Prompts))
	}
	d.current = nil
	d.notifyLocked()
	return d.answers, d.gone, nil
}

// send hands a claimed answer to the conversation waiting for it, unless it
// stopped waiting meanwhile (idle timeout, cancellation).
func (d *Dialog) send(ch chan answer, gone chan struct{}, a answer) error {
	select {
	case ch <- a:
		return nil
	case <-gone:
		wipeResponses(a.resps)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.expired {
			return errorf("%w: %w", ErrNotWaiting, ErrIdleTimeout)
		}
		return ErrNotWaiting
	}
}

// Expire abandons the dialog as its idle timeout does, without waiting for
// it: the batch waiting for an answer, or the next one the operations send,
// fails with ErrIdleTimeout, and later answers get ErrNotWaiting wrapping
// ErrIdleTimeout. A server that keeps its own account of activity (a
// session's logout, a shutdown) calls it to report the logins it drops as
// timed out; tests call it to drive the timeout without a clock. It does not
// wait; Done tells when all is over.
func (d *Dialog) Expire() {
	d.expireOnce.Do(func() {
		d.mu.Lock()
		d.expired = true
		d.mu.Unlock()
		close(d.expire)
	})
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
