package module

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
)

// The six service functions. A module implements any of them; libpam calls
// the ones the service file's lines name. Each returns nil for success or an
// error: a pam.Code (pam.ErrAuth, pam.ErrUserUnknown, pam.ErrIgnore, ...),
// an error wrapping one, or a *pam.Error, which become that code; any other
// error becomes PAM_SYSTEM_ERR and is logged with its text.
type (
	// Authenticator is pam_sm_authenticate: check that the user is who
	// they claim to be.
	Authenticator interface{ Authenticate(h *Handle) error }
	// CredentialSetter is pam_sm_setcred: establish, delete, reinitialise
	// or refresh the user's credentials (see Flags).
	CredentialSetter interface{ SetCred(h *Handle) error }
	// AccountManager is pam_sm_acct_mgmt: may the authenticated user log
	// in now (expiry, time of day, ...).
	AccountManager interface{ AcctMgmt(h *Handle) error }
	// SessionOpener is pam_sm_open_session.
	SessionOpener interface{ OpenSession(h *Handle) error }
	// SessionCloser is pam_sm_close_session.
	SessionCloser interface{ CloseSession(h *Handle) error }
	// AuthTokChanger is pam_sm_chauthtok. libpam calls it twice per
	// change: first with PrelimCheck (can the token be changed?), then
	// with UpdateAuthTok (change it).
	AuthTokChanger interface{ ChangeAuthTok(h *Handle) error }
)

// Op identifies a service function.
type Op int

// The service functions, in the order of their bits in the C side's table.
const (
	OpAuthenticate Op = iota
	OpSetCred
	OpAcctMgmt
	OpOpenSession
	OpCloseSession
	OpChangeAuthTok
	numOps
)

var opNames = [numOps]string{"authenticate", "setcred", "acct_mgmt", "open_session", "close_session", "chauthtok"}

// String returns the PAM name of the operation, as in "acct_mgmt".
func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Flags are the flags libpam passed to a service function, in gopam's own
// portable bits (the C side translates them from the implementation's
// numbers). Each function sees only the ones PAM defines for it.
type Flags uint32

// The flags of the service functions.
const (
	Silent               Flags = 1 << iota // PAM_SILENT: send no informational messages
	DisallowNullAuthTok                    // PAM_DISALLOW_NULL_AUTHTOK (authenticate, acct_mgmt)
	EstablishCred                          // PAM_ESTABLISH_CRED (setcred)
	DeleteCred                             // PAM_DELETE_CRED (setcred)
	ReinitializeCred                       // PAM_REINITIALIZE_CRED (setcred)
	RefreshCred                            // PAM_REFRESH_CRED (setcred)
	ChangeExpiredAuthTok                   // PAM_CHANGE_EXPIRED_AUTHTOK (chauthtok)
	PrelimCheck                            // PAM_PRELIM_CHECK: chauthtok's first pass
	UpdateAuthTok                          // PAM_UPDATE_AUTHTOK: chauthtok's second pass
)

// registry holds the one registered module.
var registry struct {
	sync.Mutex
	m    any
	mask uint32
}

// Register makes m the module of this program. m must implement at least
// one of Authenticator, CredentialSetter, AccountManager, SessionOpener,
// SessionCloser and AuthTokChanger; the functions it does not implement
// answer PAM_IGNORE from C, without entering Go. Call Register once, from
// an init function of the module's main package; a second call, or a value
// that implements none of the interfaces, panics.
func Register(m any) {
	var mask uint32
	for op := range numOps {
		if fnFor(m, op) != nil {
			mask |= 1 << op
		}
	}
	if mask == 0 {
		panic(fmt.Sprintf("module.Register: %T implements none of the service functions", m))
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m != nil {
		panic("module.Register called twice")
	}
	registry.m, registry.mask = m, mask
	publishMask(mask)
}

// registered returns the module and the mask of its functions.
func registered() (any, uint32) {
	registry.Lock()
	defer registry.Unlock()
	return registry.m, registry.mask
}

// fnFor returns m's function for op, or nil.
func fnFor(m any, op Op) func(*Handle) error {
	switch op {
	case OpAuthenticate:
		if x, ok := m.(Authenticator); ok {
			return x.Authenticate
		}
	case OpSetCred:
		if x, ok := m.(CredentialSetter); ok {
			return x.SetCred
		}
	case OpAcctMgmt:
		if x, ok := m.(AccountManager); ok {
			return x.AcctMgmt
		}
	case OpOpenSession:
		if x, ok := m.(SessionOpener); ok {
			return x.OpenSession
		}
	case OpCloseSession:
		if x, ok := m.(SessionCloser); ok {
			return x.CloseSession
		}
	case OpChangeAuthTok:
		if x, ok := m.(AuthTokChanger); ok {
			return x.ChangeAuthTok
		}
	}
	return nil
}

// numbersFor returns the number tables of the implementation the C side
// reported.
func numbersFor(impl int) *libpam.Lib {
	if impl == implOpenPAM {
		return libpam.Numbers(libpam.ImplOpenPAM)
	}
	return libpam.Numbers(libpam.ImplLinuxPAM)
}

// dispatch runs one service function of the registered module and returns
// the native PAM code for libpam. It is the one place where Go errors become
// PAM codes, for both modes; a panic becomes PAM_SYSTEM_ERR, logged.
func dispatch(b backend, nums *libpam.Lib, op Op, flags Flags, args []string) (rc int) {
	h := &Handle{b: b, nums: nums, op: op, flags: flags, args: args}
	defer func() {
		if v := recover(); v != nil {
			h.Syslog(LogErr, "%s panicked: %v", op, v)
			rc = h.native(pam.ErrSystem)
		}
	}()
	m, _ := registered()
	fn := fnFor(m, op)
	if fn == nil {
		return h.native(pam.ErrIgnore)
	}
	err := fn(h)
	code := codeOf(err)
	if code == pam.ErrSystem && !errors.Is(err, pam.ErrSystem) {
		h.Syslog(LogErr, "%s: %v", op, err)
	}
	return h.native(code)
}

// codeOf maps a service function's error to its PAM code.
func codeOf(err error) pam.Code {
	if err == nil {
		return pam.Success
	}
	var c pam.Code
	if errors.As(err, &c) {
		return c
	}
	var pe *pam.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return pam.ErrSystem
}

// native returns the running implementation's number for c; a code it does
// not have becomes PAM_SYSTEM_ERR.
func (h *Handle) native(c pam.Code) int {
	if n, ok := h.nums.NativeCode(libpam.Code(c)); ok {
		return n
	}
	n, _ := h.nums.NativeCode(libpam.CodeSystemErr)
	return n
}

// IsHelper reports whether this process was started as a module's helper
// process by the module's C side.
func IsHelper() bool {
	return len(os.Args) == 2 && os.Args[1] == helperArg
}
