package pam

import (
	"context"
	"errors"
	"strconv"
)

// Outcome is what the error of a PAM call means for the program, whatever
// shape the error has (*Error, *InputError, a wrapped sentinel): the answer
// a server gives (401, 403, 503, ...) or a tool's exit status.
type Outcome int

// The outcomes Classify returns.
const (
	// OutcomeOK: no error.
	OutcomeOK Outcome = iota
	// OutcomeInput: gopam refused a value before calling libpam (an
	// *InputError: a NUL byte, a missing user name). The request or the
	// program is at fault; nothing was checked.
	OutcomeInput
	// OutcomeCanceled: the context ended, the handle was closed or a
	// Dialog was cancelled or left unanswered before PAM reached a
	// verdict, so the error says nothing about the credentials.
	OutcomeCanceled
	// OutcomeCredentials: the stack refused the credentials (ErrAuth,
	// ErrUserUnknown, ErrCredInsufficient, ErrMaxTries): a wrong password
	// or an unknown user, which a server should not tell apart.
	OutcomeCredentials
	// OutcomeAccount: the account may not be used now (ErrAcctExpired,
	// ErrNewAuthTokReqd, ErrAuthTokExpired, ErrCredExpired, ErrPermDenied).
	OutcomeAccount
	// OutcomeTemporary: try again later (ErrNoSlot, ErrTryAgain,
	// ErrAuthInfoUnavail, ErrAuthTokLockBusy): gopam had no call slot free,
	// or a directory or token service was unreachable or busy. A server
	// answers 503.
	OutcomeTemporary
	// OutcomeSystem: everything else: a stack that cannot be read or loaded,
	// a module or conversation failure, a callback's panic, libpam missing
	// (ErrNotSupported). The administrator or the program must act.
	OutcomeSystem
)

var outcomeNames = [...]string{"ok", "input", "canceled", "credentials", "account", "temporary", "system"}

// String returns the outcome's name, as in "credentials".
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
	return outcomeNames[o]
}

// Classify maps err, as returned by any function of this package, to an
// Outcome. The rules apply in this order; the first that matches decides:
//
//  1. nil is OutcomeOK.
//  2. An error wrapping an *InputError is OutcomeInput.
//  3. An error wrapping a PanicError (a callback's panic) is OutcomeSystem,
//     whatever code the module then returned.
//  4. An error matching ErrNoSlot is OutcomeTemporary, even when the wait
//     for a slot ended with its context: nothing was asked of PAM, and the
//     server was too busy to ask.
//  5. An *Error whose fail delay was cut short by its context keeps the
//     verdict of its Code (rule 7): the stack had decided before the
//     context ended, so a wrong password stays OutcomeCredentials even
//     though the error also matches context.DeadlineExceeded.
//  6. An error matching context.Canceled, context.DeadlineExceeded,
//     ErrClosed, ErrIdleTimeout or ErrDialogCancelled is OutcomeCanceled:
//     a call abandoned in C, a conversation that saw its context end (the
//     module's code then reflects the missing answer, not the
//     credentials), a handle closed by another goroutine.
//  7. An error matching a Code is classified by the code, as the constants
//     of Outcome list; other codes are OutcomeSystem.
//  8. Anything else is OutcomeSystem.
func Classify(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	var in *InputError
	if errors.As(err, &in) {
		return OutcomeInput
	}
	var p *PanicError
	if errors.As(err, &p) {
		return OutcomeSystem
	}
	if errors.Is(err, ErrNoSlot) {
		return OutcomeTemporary
	}
	var e *Error
	isErr := errors.As(err, &e)
	var cut *delayCutShort
	if !(isErr && errors.As(e.Err, &cut)) && canceled(err) {
		return OutcomeCanceled
	}
	var c Code
	if isErr {
		c = e.Code
	} else if !errors.As(err, &c) {
		return OutcomeSystem
	}
	switch c {
	case ErrAuth, ErrUserUnknown, ErrCredInsufficient, ErrMaxTries:
		return OutcomeCredentials
	case ErrAcctExpired, ErrNewAuthTokReqd, ErrAuthTokExpired, ErrCredExpired, ErrPermDenied:
		return OutcomeAccount
	case ErrTryAgain, ErrAuthInfoUnavail, ErrAuthTokLockBusy:
		return OutcomeTemporary
	}
	return OutcomeSystem
}

// canceled reports whether err says that a context ended or the handle or
// dialog was closed.
func canceled(err error) bool {
	for _, target := range []error{context.Canceled, context.DeadlineExceeded, ErrClosed, ErrIdleTimeout, ErrDialogCancelled} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// delayCutShort is the cause an *Error carries when its context ended
// during the fail delay, after the stack had returned its verdict.
type delayCutShort struct{ cause error }

func (d *delayCutShort) Error() string { return "fail delay cut short: " + d.cause.Error() }
func (d *delayCutShort) Unwrap() error { return d.cause }
