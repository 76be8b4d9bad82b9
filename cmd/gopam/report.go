package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Outcome    string `json:"outcome"`
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
	return pam.MatchSensitive(nil, name)
}

// shownValue is value, or the mask when name is sensitive.
func shownValue(name, value string) (string, bool) {
	if sensitive(name) {
		return mask, true
	}
	return value, false
}

// codeName is the C name of a code, or a made-up one for a number the pam
// package does not know.
func codeName(c pam.Code, errno int) string {
	if c == pam.ErrUnknownCode {
		return fmt.Sprintf("PAM_UNKNOWN_%d", errno)
	}
	return c.Name()
}

// newResult describes the outcome err of a call that took d.
func newResult(err error, d time.Duration) result {
	r := result{OK: err == nil, Outcome: pam.Classify(err).String(), DurationNS: d.Nanoseconds(), Duration: d.String()}
	if err == nil {
		r.Code = pam.Success.Name()
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
