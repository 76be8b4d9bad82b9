package pam

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/gopam/pam/internal/libpam"
)

// Item is a PAM item that holds a string. Items that are not strings have
// their own methods: the conversation (SetConversation), the authentication
// tokens (SetAuthTok, SetOldAuthTok), the X authorisation data (XAuthData)
// and the fail delay function, which gopam owns (Config.Delay).
type Item int

// The string items. Some exist on one implementation only; using one where it
// does not exist returns an error matching ErrNotSupported.
const (
	ItemService          = Item(libpam.ItemService)          // PAM_SERVICE
	ItemUser             = Item(libpam.ItemUser)             // PAM_USER
	ItemTTY              = Item(libpam.ItemTTY)              // PAM_TTY
	ItemRHost            = Item(libpam.ItemRHost)            // PAM_RHOST
	ItemRUser            = Item(libpam.ItemRUser)            // PAM_RUSER
	ItemUserPrompt       = Item(libpam.ItemUserPrompt)       // PAM_USER_PROMPT
	ItemXDisplay         = Item(libpam.ItemXDisplay)         // PAM_XDISPLAY (Linux-PAM)
	ItemAuthTokType      = Item(libpam.ItemAuthTokType)      // PAM_AUTHTOK_TYPE (Linux-PAM)
	ItemRepository       = Item(libpam.ItemRepository)       // PAM_REPOSITORY (OpenPAM)
	ItemAuthTokPrompt    = Item(libpam.ItemAuthTokPrompt)    // PAM_AUTHTOK_PROMPT (OpenPAM)
	ItemOldAuthTokPrompt = Item(libpam.ItemOldAuthTokPrompt) // PAM_OLDAUTHTOK_PROMPT (OpenPAM)
	ItemHost             = Item(libpam.ItemHost)             // PAM_HOST (OpenPAM)
)

var itemNames = map[Item]string{
	ItemService: "PAM_SERVICE", ItemUser: "PAM_USER", ItemTTY: "PAM_TTY", ItemRHost: "PAM_RHOST",
	ItemRUser: "PAM_RUSER", ItemUserPrompt: "PAM_USER_PROMPT", ItemXDisplay: "PAM_XDISPLAY",
	ItemAuthTokType: "PAM_AUTHTOK_TYPE", ItemRepository: "PAM_REPOSITORY",
	ItemAuthTokPrompt: "PAM_AUTHTOK_PROMPT", ItemOldAuthTokPrompt: "PAM_OLDAUTHTOK_PROMPT",
	ItemHost: "PAM_HOST",
}

// String returns the item's PAM name, as in "PAM_TTY".
func (it Item) String() string {
	if n, ok := itemNames[it]; ok {
		return n
	}
	return fmt.Sprintf("Item(%d)", int(it))
}

// nativeItem returns the implementation's number for an item, or an error
// matching ErrNotSupported where it has none.
func (s *state) nativeItem(it libpam.Item, name string) (int, error) {
	n, ok := s.lib.NativeItem(it)
	if !ok {
		return 0, notSupported(name + " on " + s.lib.Impl.String())
	}
	return n, nil
}

// stringItem checks that it is one of the string items and returns its
// number.
func (s *state) stringItem(it Item) (int, error) {
	if _, ok := itemNames[it]; !ok {
		return 0, &InputError{Op: "item", Field: "item", Err: fmt.Errorf("%d is not a string item", int(it))}
	}
	n, err := s.nativeItem(libpam.Item(it), it.String())
	if err == nil && it == ItemRepository {
		// OpenPAM's PAM_REPOSITORY is a struct pam_repository: read or set
		// as a string, libpam would copy the struct's size from it.
		return 0, &InputError{Op: "item", Field: "item", Err: errors.New("PAM_REPOSITORY is a structure, not a string item")}
	}
	return n, err
}

// Item returns the value of a string item; an item that was never set gives
// "".
func (h *Handle) Item(it Item) (string, error) {
	s := h.s
	n, err := s.stringItem(it)
	if err != nil {
		return "", err
	}
	var v string
	if err := s.call("get "+it.String(), func() (rc int) {
		v, _, rc = s.lib.GetItemString(s.pamh, n)
		return rc
	}); err != nil {
		return "", err
	}
	return v, nil
}

// SetItem sets a string item. Setting ItemUser changes the user the next
// operations act on.
func (h *Handle) SetItem(it Item, v string) error {
	s := h.s
	n, err := s.stringItem(it)
	if err != nil {
		return err
	}
	c, err := libpam.CString(v)
	if err != nil {
		return &InputError{Op: "set " + it.String(), Field: "value", Err: err}
	}
	return s.call("set "+it.String(), func() int {
		rc := s.lib.SetItemString(s.pamh, n, c)
		if rc == 0 && it == ItemUser {
			s.user = v
		}
		return rc
	})
}

// call runs f, a libpam call that returns a native status, on the
// transaction's thread and turns a failure into an *Error for op.
func (s *state) call(op string, f func() int) error {
	var e *Error
	if err := s.do(func() {
		if rc := f(); rc != 0 {
			e = s.newError(op, rc, nil)
		}
	}); err != nil {
		return err
	}
	if e != nil {
		return e
	}
	return nil
}

// SetAuthTok sets PAM_AUTHTOK, the token modules that honour use_first_pass
// or try_first_pass check instead of prompting. The copy gopam makes for C is
// wiped; tok stays the caller's. Nil clears the item. Linux-PAM lets only
// modules set the tokens: from an application it fails with ErrBadItem, and
// the password must come through the conversation (Answers) instead.
func (h *Handle) SetAuthTok(tok []byte) error {
	return h.s.setSecret(libpam.ItemAuthTok, "PAM_AUTHTOK", tok)
}

// SetOldAuthTok sets PAM_OLDAUTHTOK, the current token ChangeAuthTok replaces.
func (h *Handle) SetOldAuthTok(tok []byte) error {
	return h.s.setSecret(libpam.ItemOldAuthTok, "PAM_OLDAUTHTOK", tok)
}

func (s *state) setSecret(it libpam.Item, name string, tok []byte) error {
	n, err := s.nativeItem(it, name)
	if err != nil {
		return err
	}
	for _, b := range tok {
		if b == 0 {
			return &InputError{Op: "set " + name, Field: "token", Err: ErrNUL}
		}
	}
	return s.call("set "+name, func() int {
		rc, _ := s.lib.SetItemSecret(s.pamh, n, tok)
		return rc
	})
}

// XAuthData is the PAM_XAUTHDATA item (Linux-PAM): the X server
// authorisation a display manager passes to modules.
type XAuthData struct {
	Name string // the authorisation protocol, as in "MIT-MAGIC-COOKIE-1"
	Data []byte // the authorisation data
}

// XAuthData returns the PAM_XAUTHDATA item; unset gives the zero value.
func (h *Handle) XAuthData() (XAuthData, error) {
	s := h.s
	n, err := s.nativeItem(libpam.ItemXAuthData, "PAM_XAUTHDATA")
	if err != nil {
		return XAuthData{}, err
	}
	var x XAuthData
	if err := s.call("get PAM_XAUTHDATA", func() (rc int) {
		x.Name, x.Data, _, rc = s.lib.GetXAuthData(s.pamh, n)
		return rc
	}); err != nil {
		return XAuthData{}, err
	}
	return x, nil
}

// ErrEmptyXAuth is the reason of the InputError SetXAuthData returns for an
// empty Name or Data.
var ErrEmptyXAuth = errors.New("is empty: Linux-PAM would keep a zero-length copy that it never frees")

// SetXAuthData sets the PAM_XAUTHDATA item (Linux-PAM). Name and Data must
// not be empty (an InputError wrapping ErrEmptyXAuth says which): Linux-PAM
// copies an empty name or data into a fresh allocation but frees the old
// copies only when their length is not zero, so every later setting of the
// item would leak them.
func (h *Handle) SetXAuthData(x XAuthData) error {
	s := h.s
	n, err := s.nativeItem(libpam.ItemXAuthData, "PAM_XAUTHDATA")
	if err != nil {
		return err
	}
	if x.Name == "" {
		return &InputError{Op: "set PAM_XAUTHDATA", Field: "name", Err: ErrEmptyXAuth}
	}
	name, err := libpam.CString(x.Name)
	if err != nil {
		return &InputError{Op: "set PAM_XAUTHDATA", Field: "name", Err: err}
	}
	if len(x.Data) == 0 {
		return &InputError{Op: "set PAM_XAUTHDATA", Field: "data", Err: ErrEmptyXAuth}
	}
	return s.call("set PAM_XAUTHDATA", func() int { return s.lib.SetXAuthData(s.pamh, n, name, x.Data) })
}

// SetConversation replaces the conversation. Setting it again also clears
// Linux-PAM's memory of a failed user name prompt, after which it would
// otherwise refuse every prompt for the user.
func (h *Handle) SetConversation(c Conversation) error {
	if c == nil {
		return &InputError{Op: "set PAM_CONV", Field: "conversation", Err: fmt.Errorf("is nil")}
	}
	s := h.s
	n, _ := s.lib.NativeItem(libpam.ItemConv)
	return s.call("set PAM_CONV", func() int {
		rc := s.lib.SetConv(s.pamh, n, s.id)
		if rc == 0 {
			s.conv = c
		}
		return rc
	})
}

// Elevated reports whether the handle keeps sensitive variables in the PAM
// environment (see SetElevated).
func (h *Handle) Elevated() bool {
	return h.s.elevated.Load()
}

// SetElevated controls scrubbing. By default gopam removes the variables named
// by Config.SensitiveEnv from the PAM environment after every operation,
// since modules may leave passwords there. A program running with effective user ID 0 may set elevated to keep
// them (for modules that read them again in EstablishCredentials); for anyone
// else SetElevated(true) fails with an error matching os.ErrPermission
// (syscall.EACCES).
func (h *Handle) SetElevated(on bool) error {
	s := h.s
	if on && os.Geteuid() != 0 {
		return fmt.Errorf("pam: set elevated: needs effective user ID 0: %w", syscall.EACCES)
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.elevated.Store(on)
	return nil
}
