package pam

import (
	"context"
	"time"
)

// DefaultService is the service Start uses when Config.Service is empty: the
// stack for interactive logins that virtually every system has.
const DefaultService = "login"

// Config describes a PAM transaction. Its zero value means "the user running
// this program, interactively": DefaultService, the current user, and a
// TerminalConversation on standard input and output.
type Config struct {
	// Service is the PAM service name, which selects the stack
	// (/etc/pam.d/<service>, or ConfDir/<service>). Empty means
	// DefaultService.
	Service string

	// User is the user to authenticate. Empty means the user running this
	// program, unless AskUser is set.
	User string

	// AskUser starts the transaction without a user, so that the first module
	// that needs one asks for it through the conversation.
	AskUser bool

	// Conv answers the modules' messages. Nil means TerminalConversation{}.
	Conv Conversation

	// Delay, when set, receives the fail delay libpam computed at the end of
	// every Authenticate and ChangeAuthTok (on success too, with a nil
	// status), and is then responsible for the delay: gopam does not wait.
	// It runs on the caller's goroutine after the PAM call has returned, so
	// it holds no OS thread; a server can use it to delay one client's next
	// answer instead of blocking. Needs the fail_delay extension.
	Delay DelayFunc

	// BlockingFailDelay leaves the fail delay to libpam, which then sleeps
	// inside the PAM call, holding its thread. By default gopam installs its
	// own PAM_FAIL_DELAY function and waits after the call, in Go, only on
	// failure, and gives up waiting when the operation's context ends.
	BlockingFailDelay bool

	// Slots is the pool of call slots the transaction's threads take (see
	// Slots); nil means the process's, DefaultSlots.
	Slots *Slots

	// SlotWait bounds the wait for a free call slot, apart from the
	// operation's context: 0 waits as long as the context allows, a
	// positive duration at most that long, and NoSlotWait not at all. A
	// transaction that gets no slot fails with an error matching
	// ErrNoSlot, having done no PAM work for it: the signal for a server to
	// answer "busy" (HTTP 503) at once rather than spend the request's
	// deadline in a queue.
	SlotWait time.Duration

	// Threads chooses which OS threads run the handle's calls (see
	// ThreadPolicy): ThreadDefault, the zero value, or ThreadPerHandle.
	Threads ThreadPolicy

	// ConfDir, when set, replaces /etc/pam.d: the stack is read from
	// ConfDir/<service> (or ConfDir/other). Needs the confdir extension
	// (Linux-PAM 1.4 and later).
	ConfDir string

	// TTY, RHost and RUser set the PAM_TTY, PAM_RHOST and PAM_RUSER items
	// when not empty.
	TTY, RHost, RUser string

	// SensitiveEnv lists patterns of the PAM environment variables that are
	// removed after every operation (a module of any kind may leave a
	// password there) unless the handle is elevated. A pattern matches the
	// whole name, ignoring ASCII case: '*' matches any run of bytes, '/'
	// included, '?' any one byte, every other byte itself ('[' and '\' are
	// refused: this is not path.Match). So "*PASSWORD*" matches
	// "KRB5/PASSWORD", "Password" and "x_password_y". Names are matched in
	// libpam's memory: no value is copied into Go memory to decide. Nil
	// means DefaultSensitiveEnv; an empty, non-nil slice scrubs nothing.
	// MatchSensitive applies the same rules.
	SensitiveEnv []string
}

// DelayFunc receives a fail delay: the status of the operation that ended
// (nil on success, else an error matching its Code) and the delay libpam
// computed. ctx is the operation's context.
type DelayFunc func(ctx context.Context, status error, delay time.Duration)

// DefaultSensitiveEnv is the default Config.SensitiveEnv: names under which
// modules are known to leave passwords in the PAM environment (some OpenPAM
// modules on macOS, test modules that export PAM_AUTHTOK), and names that say
// they hold one.
var DefaultSensitiveEnv = []string{
	"*AUTHTOK*", "*PASSWORD*", "*PASSWD*", "NTLMPWD", "mount_authenticator",
}
