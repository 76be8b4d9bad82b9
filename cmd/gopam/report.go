package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/gopam/pam"
)

// report is the document --json prints. Every field is described under
// JSON OUTPUT in help.txt; a test checks that the two agree.
type report struct {
	Format         int        `json:"format"`
	Mode           string     `json:"mode"`
	Implementation string     `json:"implementation"`
	Service        string     `json:"service"`
	User           string     `json:"user"`
	ConfDir        string     `json:"confdir"`
	Start          result     `json:"start"`
	Setup          []setup    `json:"setup"`
	Operations     []opRecord `json:"operations"`
	Env            []envVar   `json:"env"`
	OK             bool       `json:"ok"`
	ExitStatus     int        `json:"exit_status"`
	Error          string     `json:"error"`
	Hint           string     `json:"hint"`
}

// result is the outcome of one PAM call.
type result struct {
	OK         bool   `json:"ok"`
	Code       string `json:"code"`
	Errno      int    `json:"errno"`
	Strerror   string `json:"strerror"`
	Error      string `json:"error"`
	DurationNS int64  `json:"duration_ns"`
	Duration   string `json:"duration"`
}

// setup is one -I or -E applied before the operations.
type setup struct {
	Action string `json:"action"`
	Name   string `json:"name"`
	Value  string `json:"value"`
	result
}

// opRecord is one operation and the conversation it held.
type opRecord struct {
	Op           string      `json:"op"`
	Flags        []string    `json:"flags"`
	Message      string      `json:"message"`
	Conversation []convEvent `json:"conversation"`
	result
}

// convEvent is one message of a conversation.
type convEvent struct {
	Style  string  `json:"style"`
	Text   string  `json:"text"`
	Prompt bool    `json:"prompt"`
	Answer *string `json:"answer"`
	Source string  `json:"source"`
	Error  string  `json:"error"`
}

// envVar is one variable of the PAM environment.
type envVar struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Masked bool   `json:"masked"`
}

// mask is what a secret is shown as.
const mask = "***"

// sensitive reports whether the PAM environment variable name may hold a
// secret, by the patterns the pam package scrubs.
func sensitive(name string) bool {
	for _, p := range pam.DefaultSensitiveEnv {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// shownValue is value, or the mask when name is sensitive.
func shownValue(name, value string) (string, bool) {
	if sensitive(name) {
		return mask, true
	}
	return value, false
}

// codeNames are the C names of the pam package's codes; the package itself
// only has descriptions.
var codeNames = map[pam.Code]string{
	pam.Success:                "PAM_SUCCESS",
	pam.ErrOpen:                "PAM_OPEN_ERR",
	pam.ErrSymbol:              "PAM_SYMBOL_ERR",
	pam.ErrService:             "PAM_SERVICE_ERR",
	pam.ErrSystem:              "PAM_SYSTEM_ERR",
	pam.ErrBuf:                 "PAM_BUF_ERR",
	pam.ErrPermDenied:          "PAM_PERM_DENIED",
	pam.ErrAuth:                "PAM_AUTH_ERR",
	pam.ErrCredInsufficient:    "PAM_CRED_INSUFFICIENT",
	pam.ErrAuthInfoUnavail:     "PAM_AUTHINFO_UNAVAIL",
	pam.ErrUserUnknown:         "PAM_USER_UNKNOWN",
	pam.ErrMaxTries:            "PAM_MAXTRIES",
	pam.ErrNewAuthTokReqd:      "PAM_NEW_AUTHTOK_REQD",
	pam.ErrAcctExpired:         "PAM_ACCT_EXPIRED",
	pam.ErrSession:             "PAM_SESSION_ERR",
	pam.ErrCredUnavail:         "PAM_CRED_UNAVAIL",
	pam.ErrCredExpired:         "PAM_CRED_EXPIRED",
	pam.ErrCred:                "PAM_CRED_ERR",
	pam.ErrNoModuleData:        "PAM_NO_MODULE_DATA",
	pam.ErrConv:                "PAM_CONV_ERR",
	pam.ErrAuthTok:             "PAM_AUTHTOK_ERR",
	pam.ErrAuthTokRecovery:     "PAM_AUTHTOK_RECOVERY_ERR",
	pam.ErrAuthTokLockBusy:     "PAM_AUTHTOK_LOCK_BUSY",
	pam.ErrAuthTokDisableAging: "PAM_AUTHTOK_DISABLE_AGING",
	pam.ErrTryAgain:            "PAM_TRY_AGAIN",
	pam.ErrIgnore:              "PAM_IGNORE",
	pam.ErrAbort:               "PAM_ABORT",
	pam.ErrAuthTokExpired:      "PAM_AUTHTOK_EXPIRED",
	pam.ErrModuleUnknown:       "PAM_MODULE_UNKNOWN",
	pam.ErrBadItem:             "PAM_BAD_ITEM",
	pam.ErrConvAgain:           "PAM_CONV_AGAIN",
	pam.ErrIncomplete:          "PAM_INCOMPLETE",
	pam.ErrDomainUnknown:       "PAM_DOMAIN_UNKNOWN",
	pam.ErrBadHandle:           "PAM_BAD_HANDLE",
	pam.ErrBadFeature:          "PAM_BAD_FEATURE",
	pam.ErrBadConstant:         "PAM_BAD_CONSTANT",
}

// codeName is the C name of a code, or a made-up one for a number the pam
// package does not know.
func codeName(c pam.Code, errno int) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("PAM_UNKNOWN_%d", errno)
}

// newResult describes the outcome err of a call that took d.
func newResult(err error, d time.Duration) result {
	r := result{OK: err == nil, DurationNS: d.Nanoseconds(), Duration: d.String()}
	if err == nil {
		r.Code = codeNames[pam.Success]
		return r
	}
	r.Error = err.Error()
	var pe *pam.Error
	if errors.As(err, &pe) {
		r.Code = codeName(pe.Code, pe.Errno())
		r.Errno = pe.Errno()
		r.Strerror = pe.Strerror()
	}
	return r
}

// failureText is the text printed after "gopam: " for a failed call: the
// running libpam's pam_strerror, as pamtester prints, or a description when
// the failure is not a PAM code.
func failureText(err error, timeout time.Duration) string {
	var pe *pam.Error
	switch {
	case errors.As(err, &pe) && pe.Strerror() != "":
		return pe.Strerror()
	case errors.As(err, &pe):
		return pe.Code.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out (--timeout %v)", timeout)
	}
	return err.Error()
}

// hint explains a failure the conversation caused, or returns "".
func hint(err error) string {
	switch {
	case errors.Is(err, pam.ErrNoTerminal):
		return "a module asked a question, but standard input is not a terminal and no answers were given; use --answer or --answers-file"
	case errors.Is(err, pam.ErrNoAnswer):
		return "a module asked more questions than there were answers; add --answer"
	}
	return ""
}

func (r *report) write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
