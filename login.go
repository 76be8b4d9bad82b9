package pam

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gopam/pam/internal/esc"
)

// ErrUnexpectedPrompt is the error of a UserPassword conversation asked
// something it has no answer for: a binary prompt, an echo-on prompt when no
// user name was given, or an echo-off prompt after Wipe.
var ErrUnexpectedPrompt = errors.New("pam: the conversation has no answer of this kind")

// UserPassword returns a Conversation for a password login whose user name
// and password the program already holds (a server checking a request's
// credentials). It answers by the prompt's style, so that the password can
// never be taken for a user name:
//
//   - an echo-off prompt (a password) gets the password, each time one is
//     asked (a stack that asks twice, such as a check then a confirmation,
//     gets it twice);
//   - an echo-on prompt is taken as the question for the user name, the only
//     one a password stack asks with echo on, and gets user; with an empty
//     user it fails with ErrUnexpectedPrompt;
//   - a binary prompt fails with ErrUnexpectedPrompt;
//   - TEXT_INFO and ERROR_MSG messages are ignored.
//
// A stack that asks other echo-on questions (a one-time code) needs a
// conversation of its own, such as a Dialog. UserPassword keeps its own copy
// of the password and hands out copies (gopam wipes each one once libpam has
// it); Wipe erases the copy it keeps. It is safe for concurrent use.
//
// pam.Answers, by contrast, hands its answers out in order whatever the
// prompt's style.
func UserPassword(user string, password []byte) *PasswordAnswers {
	return &PasswordAnswers{user: user, password: append([]byte(nil), password...)}
}

// PasswordAnswers is the Conversation UserPassword returns.
type PasswordAnswers struct {
	user string

	mu       sync.Mutex
	password []byte // nil after Wipe
	wiped    bool
}

// Converse answers msgs by style (see UserPassword).
func (p *PasswordAnswers) Converse(_ context.Context, msgs []Message) ([]Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Response, len(msgs))
	for i, m := range msgs {
		var err error
		switch m.Style {
		case PromptEchoOff:
			if p.wiped {
				err = fmt.Errorf("%w: echo-off prompt %s after Wipe", ErrUnexpectedPrompt, esc.Quote(m.Text))
				break
			}
			out[i].Data = append(make([]byte, 0, len(p.password)), p.password...)
		case PromptEchoOn:
			if p.user == "" {
				err = fmt.Errorf("%w: echo-on prompt %s, and no user name was given", ErrUnexpectedPrompt, esc.Quote(m.Text))
				break
			}
			out[i].Data = []byte(p.user)
		case TextInfo, ErrorMsg:
		default:
			err = fmt.Errorf("%w: %v %s", ErrUnexpectedPrompt, m.Style, esc.Quote(m.Text))
		}
		if err != nil {
			wipeResponses(out[:i])
			return nil, err
		}
	}
	return out, nil
}

// Wipe erases the password the conversation keeps; later echo-off prompts
// fail with ErrUnexpectedPrompt.
func (p *PasswordAnswers) Wipe() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.password)
	p.password, p.wiped = nil, true
}

// CheckPassword checks that user may log in with password through cfg's
// stack: one whole transaction (Run) that runs Authenticate and then
// AcctMgmt, with DisallowNullAuthTok, answered by UserPassword(user,
// password). Authentication alone would let expired and locked accounts in;
// CheckPassword never stops there.
//
// cfg gives the service, ConfDir, RHost and the rest; its User, AskUser,
// CurrentUser and Conv must be unset (an *InputError otherwise), and so must
// Threads, as for Run. An empty user
// is refused with an *InputError matching ErrUserRequired before any PAM call,
// so that a request without a name never checks anybody's password. ctx bounds
// the whole transaction, the wait for a call slot and the fail delay
// included. The result is nil or the operation's error; Classify maps it to
// an outcome (a wrong password is OutcomeCredentials).
func CheckPassword(ctx context.Context, cfg Config, user string, password []byte) error {
	switch {
	case cfg.Conv != nil:
		return &InputError{Op: "check password", Field: "conv", Err: errors.New("CheckPassword supplies the conversation; leave Config.Conv nil")}
	case cfg.User != "" || cfg.AskUser || cfg.CurrentUser:
		return &InputError{Op: "check password", Field: "user", Err: errors.New("CheckPassword takes the user as its argument; leave Config.User, AskUser and CurrentUser unset")}
	case user == "":
		return &InputError{Op: "check password", Field: "user", Err: fmt.Errorf("%w: the user name is empty", ErrUserRequired)}
	}
	conv := UserPassword(user, password)
	defer conv.Wipe()
	cfg.User, cfg.Conv = user, conv
	return Run(ctx, cfg, func(ctx context.Context, h *Handle) error {
		return h.Login(ctx, DisallowNullAuthTok)
	})
}
