package pam

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gopam/pam/internal/esc"
	"github.com/gopam/pam/internal/libpam"
)

// Code is a PAM return code. The constants below are gopam's own portable
// values: the same constant means the same outcome on Linux-PAM and OpenPAM,
// whose numbers differ. A Code is an error, so callers test an operation's
// outcome with errors.Is(err, pam.ErrUserUnknown); Error.Errno gives the
// number the running libpam used.
type Code int

// Every PAM return code. Codes that only one implementation returns say so.
const (
	Success                = Code(libpam.CodeSuccess)             // success (never returned as an error)
	ErrOpen                = Code(libpam.CodeOpenErr)             // a module could not be loaded
	ErrSymbol              = Code(libpam.CodeSymbolErr)           // a module lacks a symbol
	ErrService             = Code(libpam.CodeServiceErr)          // error in a service module
	ErrSystem              = Code(libpam.CodeSystemErr)           // system error
	ErrBuf                 = Code(libpam.CodeBufErr)              // memory buffer error
	ErrPermDenied          = Code(libpam.CodePermDenied)          // permission denied
	ErrAuth                = Code(libpam.CodeAuthErr)             // authentication failure
	ErrCredInsufficient    = Code(libpam.CodeCredInsufficient)    // insufficient credentials to access authentication data
	ErrAuthInfoUnavail     = Code(libpam.CodeAuthInfoUnavail)     // authentication service cannot retrieve authentication information
	ErrUserUnknown         = Code(libpam.CodeUserUnknown)         // user not known to the authentication module
	ErrMaxTries            = Code(libpam.CodeMaxTries)            // maximum number of tries exceeded
	ErrNewAuthTokReqd      = Code(libpam.CodeNewAuthTokReqd)      // a new authentication token is required
	ErrAcctExpired         = Code(libpam.CodeAcctExpired)         // user account has expired
	ErrSession             = Code(libpam.CodeSessionErr)          // cannot make or remove a session entry
	ErrCredUnavail         = Code(libpam.CodeCredUnavail)         // cannot retrieve user credentials
	ErrCredExpired         = Code(libpam.CodeCredExpired)         // user credentials expired
	ErrCred                = Code(libpam.CodeCredErr)             // failure setting user credentials
	ErrNoModuleData        = Code(libpam.CodeNoModuleData)        // no module-specific data is present
	ErrConv                = Code(libpam.CodeConvErr)             // conversation error
	ErrAuthTok             = Code(libpam.CodeAuthTokErr)          // authentication token manipulation error
	ErrAuthTokRecovery     = Code(libpam.CodeAuthTokRecoveryErr)  // old authentication token cannot be recovered
	ErrAuthTokLockBusy     = Code(libpam.CodeAuthTokLockBusy)     // authentication token lock busy
	ErrAuthTokDisableAging = Code(libpam.CodeAuthTokDisableAging) // authentication token aging disabled
	ErrTryAgain            = Code(libpam.CodeTryAgain)            // preliminary check failed; try again
	ErrIgnore              = Code(libpam.CodeIgnore)              // ignore this module (a module's answer; a stack never returns it)
	ErrAbort               = Code(libpam.CodeAbort)               // critical error, the transaction must end
	ErrAuthTokExpired      = Code(libpam.CodeAuthTokExpired)      // authentication token has expired
	ErrModuleUnknown       = Code(libpam.CodeModuleUnknown)       // module is not known
	ErrBadItem             = Code(libpam.CodeBadItem)             // bad item passed to an item or environment function
	ErrConvAgain           = Code(libpam.CodeConvAgain)           // conversation will be resumed (Linux-PAM)
	ErrIncomplete          = Code(libpam.CodeIncomplete)          // call again to complete the operation (Linux-PAM)
	ErrDomainUnknown       = Code(libpam.CodeDomainUnknown)       // unknown authentication domain (OpenPAM)
	ErrBadHandle           = Code(libpam.CodeBadHandle)           // invalid PAM handle (OpenPAM)
	ErrBadFeature          = Code(libpam.CodeBadFeature)          // unrecognised or restricted feature (OpenPAM)
	ErrBadConstant         = Code(libpam.CodeBadConstant)         // bad constant, such as an unknown flag (OpenPAM)
	ErrUnknownCode         = Code(libpam.CodeUnknown)             // a number the running libpam returned that gopam does not know
)

var codeNames = [...]string{
	"success", "failed to load module", "symbol not found", "error in service module",
	"system error", "memory buffer error", "permission denied", "authentication failure",
	"insufficient credentials to access authentication data",
	"authentication service cannot retrieve authentication info",
	"user not known to the underlying authentication module", "maximum number of tries exceeded",
	"new authentication token required", "user account has expired",
	"cannot make or remove an entry for the session", "cannot retrieve user credentials",
	"user credentials expired", "failure setting user credentials",
	"no module specific data is present", "conversation error",
	"authentication token manipulation error", "authentication token cannot be recovered",
	"authentication token lock busy", "authentication token aging disabled",
	"preliminary check failed", "module asked to be ignored", "critical error, transaction aborted",
	"authentication token expired", "unknown module", "bad item", "conversation will be resumed",
	"operation incomplete, call again", "unknown authentication domain", "invalid handle",
	"unrecognised or restricted feature", "bad constant", "unknown PAM return code",
}

var cNames = [...]string{
	"PAM_SUCCESS", "PAM_OPEN_ERR", "PAM_SYMBOL_ERR", "PAM_SERVICE_ERR", "PAM_SYSTEM_ERR",
	"PAM_BUF_ERR", "PAM_PERM_DENIED", "PAM_AUTH_ERR", "PAM_CRED_INSUFFICIENT",
	"PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN", "PAM_MAXTRIES", "PAM_NEW_AUTHTOK_REQD",
	"PAM_ACCT_EXPIRED", "PAM_SESSION_ERR", "PAM_CRED_UNAVAIL", "PAM_CRED_EXPIRED",
	"PAM_CRED_ERR", "PAM_NO_MODULE_DATA", "PAM_CONV_ERR", "PAM_AUTHTOK_ERR",
	"PAM_AUTHTOK_RECOVERY_ERR", "PAM_AUTHTOK_LOCK_BUSY", "PAM_AUTHTOK_DISABLE_AGING",
	"PAM_TRY_AGAIN", "PAM_IGNORE", "PAM_ABORT", "PAM_AUTHTOK_EXPIRED", "PAM_MODULE_UNKNOWN",
	"PAM_BAD_ITEM", "PAM_CONV_AGAIN", "PAM_INCOMPLETE", "PAM_DOMAIN_UNKNOWN", "PAM_BAD_HANDLE",
	"PAM_BAD_FEATURE", "PAM_BAD_CONSTANT", "PAM_UNKNOWN",
}

// Name returns the code's C name, as in "PAM_AUTH_ERR" (the same on every
// implementation), for logs and machine-readable output.
func (c Code) Name() string {
	if c < 0 || int(c) >= len(cNames) {
		return fmt.Sprintf("PAM_CODE_%d", int(c))
	}
	return cNames[c]
}

// Error returns a short description of the code, gopam's own words (the
// running libpam's text is in Error.Strerror).
func (c Code) Error() string {
	if c < 0 || int(c) >= len(codeNames) {
		return fmt.Sprintf("pam code %d", int(c))
	}
	return codeNames[c]
}

// Errno returns the number the running libpam uses for c, and false when
// libpam is not loaded or has no such code.
func (c Code) Errno() (int, bool) {
	l, err := lib()
	if err != nil {
		return 0, false
	}
	return l.NativeCode(libpam.Code(c))
}

// Error is the error of a PAM call that libpam failed. It names the
// operation, service and user, carries the code (errors.Is(err, pam.ErrAuth)
// matches it), and wraps the cause when there is one: the conversation's
// error, a recovered panic, or the context's error
// (errors.Is(err, context.Canceled)).
//
// A call that did not complete is not an *Error: a call abandoned when its
// context ended while a module was blocked in C returns an error wrapping the
// context's error and ErrClosed, and a call refused before reaching libpam
// returns ErrClosed, an InputError or an error matching ErrNotSupported.
type Error struct {
	Op      string // the operation, as in "authenticate" or "open_session"
	Service string // the PAM service
	User    string // the PAM user at the time of the failure, if known
	Code    Code   // the portable code
	Err     error  // the underlying cause, or nil

	errno    int
	strerror string
}

// Errno returns the numeric code as the running libpam returned it.
func (e *Error) Errno() int { return e.errno }

// Strerror returns pam_strerror's text for the code, as the running libpam
// words it.
func (e *Error) Strerror() string { return e.strerror }

// Error formats as "pam: authenticate alice via login: Authentication
// failure". The user, the service and any name in Op come from users and
// modules, so the text writes each as esc.Name does: a plain short name as
// it is, anything else quoted in Go's %q style and cut after 256 bytes (with
// "...(N more bytes)"), so that the text is one line and bounded whatever
// they hold. The fields keep the full values.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pam: ")
	writeOp(&b, e.Op)
	if e.User != "" {
		b.WriteString(" ")
		b.WriteString(esc.Name(e.User))
	}
	if e.Service != "" {
		b.WriteString(" via ")
		b.WriteString(esc.Name(e.Service))
	}
	b.WriteString(": ")
	if e.strerror != "" {
		b.WriteString(e.strerror)
	} else {
		b.WriteString(e.Code.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(bareText(e.Err))
	}
	return b.String()
}

// writeOp writes an operation's name: its first word is gopam's own
// ("authenticate", "putenv"); what follows (an environment variable's name,
// an item's) may come from a user or a module and is written as esc.Name
// does.
func writeOp(b *strings.Builder, op string) {
	verb, rest, ok := strings.Cut(op, " ")
	b.WriteString(verb)
	if ok {
		b.WriteString(" ")
		b.WriteString(esc.Name(rest))
	}
}

// bareText returns err's text without the "pam: " it begins with, for an
// error wrapped inside a text that has its own: every text gopam makes
// carries the prefix once, as in "pam: run: handle is closed". The text of
// a cause may come from anywhere (a conversation's error, a panic), so it is
// kept on one line (control bytes and invalid UTF-8 escaped as %q does) and
// cut after maxCause bytes.
func bareText(err error) string {
	return oneLine(strings.TrimPrefix(err.Error(), "pam: "))
}

// maxCause bounds the text of a wrapped cause in an error's text.
const maxCause = 512

// oneLine escapes control bytes and invalid UTF-8 in s and cuts it after
// maxCause bytes, with "...(N more bytes)".
func oneLine(s string) string {
	clean := len(s) <= maxCause && utf8.ValidString(s)
	for i := 0; clean && i < len(s); i++ {
		clean = s[i] >= 0x20 && s[i] != 0x7f
	}
	if clean {
		return s
	}
	var b strings.Builder
	rest := 0
	for i := 0; i < len(s); {
		if b.Len() >= maxCause {
			rest = len(s) - i
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	if rest > 0 {
		fmt.Fprintf(&b, "...(%d more bytes)", rest)
	}
	return b.String()
}

// bare wraps an error so that its text loses the leading "pam: " while
// errors.Is and errors.As still see through it.
type bare struct{ err error }

func (b bare) Error() string { return bareText(b.err) }
func (b bare) Unwrap() error { return b.err }

// unprefixed returns err as bare, to be wrapped with %w after text of
// gopam's own; nil stays nil.
func unprefixed(err error) error {
	if err == nil {
		return nil
	}
	return bare{err}
}

// errorf is fmt.Errorf for gopam's own errors: the text is "pam: " and
// format, and the errors among args lose their own "pam: " prefix (errors.Is
// and errors.As see through them), so that the prefix appears once.
// Untrusted strings among args must be escaped by the caller (esc.Quote or
// esc.Name).
func errorf(format string, args ...any) error {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = bare{err}
		}
	}
	return fmt.Errorf("pam: "+format, args...)
}

// Is reports whether target is e's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// PanicError is the error a callback's panic becomes. The process keeps
// running; the PAM call that made the callback sees a conversation failure.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error describes the panic value, quoted and cut as esc.Quote does: a panic
// value may carry whatever the callback was handling.
func (p *PanicError) Error() string {
	return "callback panicked: " + esc.Quote(fmt.Sprint(p.Value))
}

// Unwrap returns the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// ErrClosed is returned by every use of a Handle (and its Env) after Close.
var ErrClosed = errors.New("pam: handle is closed")

// ErrReentrant is returned by a method of a Handle called from inside one of
// that handle's own callbacks (its Conversation), where it would deadlock:
// the operation that made the callback is still running.
var ErrReentrant = errors.New("pam: a handle's method was called from inside its own callback")

// ErrNotOwner is returned by a method of the Handle that Run passes to its
// function when it is called from another goroutine: that handle's calls run
// on the function's own thread. Close is the exception: from another
// goroutine it makes every later method return ErrClosed, and Run ends the
// transaction when the function returns.
var ErrNotOwner = errors.New("pam: the handle of Run was used outside its function's goroutine")

// ErrNotSupported is returned when libpam cannot be loaded, or when the
// running implementation lacks what was asked for. The error's text names the
// missing piece.
var ErrNotSupported = errors.New("pam: not supported")

// ErrNoTerminal is returned by the terminal conversation when a prompt must
// be answered and standard input is not a terminal.
var ErrNoTerminal = errors.New("pam: a prompt needs an answer but standard input is not a terminal")

// notSupported wraps ErrNotSupported with what is missing.
func notSupported(what string) error {
	return fmt.Errorf("%w: %s", ErrNotSupported, what)
}

// InputError reports a value that cannot be passed to libpam, such as a
// string with a NUL byte. No C call was made.
type InputError struct {
	Op    string // the operation
	Field string // what the value was, as in "service" or "env name"
	Err   error  // why it was rejected
}

// Error formats as "pam: start: service: contains a NUL byte". The code
// that builds an InputError escapes any untrusted text in Field (with
// esc.Quote); Op is written as in Error.
func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString("pam: ")
	writeOp(&b, e.Op)
	b.WriteString(": ")
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(bareText(e.Err))
	return b.String()
}

// Unwrap returns the reason.
func (e *InputError) Unwrap() error { return e.Err }

// ErrNUL is the reason of an InputError for a string that holds a NUL byte.
var ErrNUL = libpam.ErrNUL

// ErrGoexit is wrapped by the error of a call whose Conversation ended its
// goroutine with runtime.Goexit, as t.Fatal and t.FailNow do: like a panic,
// it is a conversation failure for the module, the call returns an error
// wrapping it (even when the stack succeeded), and the handle goes on.
var ErrGoexit = errors.New("pam: callback called runtime.Goexit")
