package pam

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"time"
)

// DefaultService is the service Start uses when Config.Service is empty: the
// stack for interactive logins that virtually every system has.
const DefaultService = "login"

// Config describes a PAM transaction. Its zero value means "the user running
// this program, interactively": DefaultService, the current user, and a
// TerminalConversation on the terminal (see Config.User for when the current
// user is taken).
type Config struct {
	// Service is the PAM service name, which selects the stack
	// (/etc/pam.d/<service>, or ConfDir/<service>). Empty means
	// DefaultService.
	Service string

	// User is the user to authenticate.
	//
	// An empty User means the user running this program only in the
	// interactive default, when Conv is nil too (login(1) at a terminal).
	// A program that supplies its own conversation must say whose
	// transaction it is: an empty User with a non-nil Conv is refused with
	// an *InputError (matching ErrUserRequired) unless AskUser or
	// CurrentUser is set. A server thus never checks the password of the
	// account it runs as because a request carried no name:
	//
	//	user, pw, _ := r.BasicAuth() // user is "" for "curl -u :password"
	//	err := pam.CheckPassword(r.Context(), pam.Config{Service: "myapp"}, user, []byte(pw))
	//	// err matches ErrUserRequired when user is "": answer 401
	//
	// At most one of User, AskUser and CurrentUser may be set.
	User string

	// AskUser starts the transaction without a user, so that the first module
	// that needs one asks for it through the conversation (a login form, a
	// greeter). The user PAM settled on is h.Item(ItemUser) afterwards.
	AskUser bool

	// CurrentUser starts the transaction for the user running this program
	// (os/user.Current), as the zero Config does, with a conversation of the
	// program's own: a screen locker, a sudo-like tool re-checking its
	// caller.
	CurrentUser bool

	// Conv answers the modules' messages. Nil means TerminalConversation{},
	// the interactive default (see User).
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
	// ConfDir/<service> (or ConfDir/other; with neither, Start fails with
	// ErrAbort). Needs the confdir extension: Linux-PAM 1.4 and later
	// (pam_start_confdir), or OpenPAM, where gopam reads the file through
	// the path form of the service name. On OpenPAM the path must use only
	// the characters A-Z a-z 0-9 . _ - and /, the service must not contain
	// '/', and a facility the file leaves out fails with ErrSystem instead
	// of falling back to the system's "other" policy. The features that
	// forbid a path as service name and verify the ownership of policy and
	// module files are process-wide in OpenPAM: gopam switches them off only
	// around its own pam_start with a ConfDir, serialised with every other
	// pam_start it makes, and restores them; a pam_start made meanwhile by
	// other code in the process would run without them. The caller vouches
	// for ConfDir and the modules its files name, as with Linux-PAM's
	// pam_start_confdir, which verifies nothing either. PAM_SERVICE holds
	// the service name, as on Linux-PAM.
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

// ErrUserRequired is the reason of the *InputError Start, Run, StartDialog
// and CheckPassword return for a Config that gives its own conversation but
// no User, AskUser or CurrentUser (see Config.User).
var ErrUserRequired = errors.New("no user given")

// startUser returns the user a transaction starts with under cfg ("" for
// none), applying the rule of Config.User. ownConv says that the caller
// supplies the conversation even though cfg.Conv is nil (StartDialog).
func startUser(op string, cfg Config, ownConv bool) (string, error) {
	n := 0
	for _, set := range []bool{cfg.User != "", cfg.AskUser, cfg.CurrentUser} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return "", &InputError{Op: op, Field: "user", Err: errors.New("set at most one of Config.User, Config.AskUser and Config.CurrentUser")}
	case cfg.User != "":
		return cfg.User, nil
	case cfg.AskUser:
		return "", nil
	case !cfg.CurrentUser && (cfg.Conv != nil || ownConv):
		return "", &InputError{Op: op, Field: "user", Err: fmt.Errorf("%w: Config.User is empty and the program gives its own conversation; "+
			"set Config.User, or Config.AskUser to let a module ask for the user, or Config.CurrentUser for the user running this program", ErrUserRequired)}
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("pam: %s: finding the current user: %w", op, err)
	}
	return u.Username, nil
}
