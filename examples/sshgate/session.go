package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
	"golang.org/x/crypto/ssh"
)

// session serves the connection's session channel: on the client's shell or
// exec request it opens the PAM session of the login, greets the user with
// the session's PAM environment, closes the session and the transaction,
// and ends the channel with an exit status. idle is the connection's idle
// timer; the request must come before it fires.
func (c *conn) session(nch ssh.NewChannel, idle *time.Timer) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	pty := false
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			// Accepted so that a plain `ssh host` works; the greeting is
			// written with CRLF line ends for the raw terminal.
			pty = true
			req.Reply(true, nil)
		case "shell", "exec":
			if !idle.Stop() {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			out := io.Writer(ch)
			errw := io.Writer(ch.Stderr())
			if pty {
				out, errw = crlf{out}, crlf{errw}
			}
			status := c.greet(out, errw)
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			go ssh.DiscardRequests(reqs)
			return
		default: // env, subsystem, forwarding requests: a gateway demo runs none
			req.Reply(false, nil)
		}
	}
}

// greet opens the PAM session of the connection's login, writes the
// greeting and the session's PAM environment to out, and closes the session
// and the transaction. Messages the session modules send go to out
// (TextInfo) and errw (ErrorMsg). It returns the exit status.
func (c *conn) greet(out, errw io.Writer) uint32 {
	t := c.takeTxn()
	if t == nil {
		fmt.Fprintln(errw, "sshgate: no PAM transaction for this session")
		return 1
	}
	defer c.finish(t)
	h := t.h
	// Session modules talk to the user through the channel now; nobody is
	// there to answer a prompt.
	if err := h.SetConversation(pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		for _, m := range msgs {
			switch m.Style {
			case pam.TextInfo:
				fmt.Fprintln(out, message(m.Text))
			case pam.ErrorMsg:
				fmt.Fprintln(errw, message(m.Text))
			default:
				return nil, errors.New("the session cannot answer prompts")
			}
		}
		return make([]pam.Response, len(msgs)), nil
	})); err != nil {
		c.logf("session of %s: %s", esc.Quote(t.user), describe(err, c.ctx))
		fmt.Fprintln(errw, "sshgate: the PAM session could not be opened")
		return 1
	}
	if err := h.OpenSession(c.ctx, 0); err != nil {
		c.logf("open_session for %s failed: %s", esc.Quote(t.user), describe(err, c.ctx))
		fmt.Fprintln(errw, "sshgate: the PAM session could not be opened")
		return 1
	}
	c.logf("session of %s opened", esc.Quote(t.user))
	env, err := h.Env().List()
	slices.Sort(env)
	fmt.Fprintf(out, "Hello, %s. sshgate authenticated you with PAM service %s.\n", printable(t.user), printable(c.s.opt.Service))
	if err != nil {
		fmt.Fprintln(errw, "sshgate: the PAM environment could not be read")
	} else {
		fmt.Fprintf(out, "The PAM environment of your session (%d variables):\n", len(env))
		for _, kv := range env {
			name, value, _ := strings.Cut(kv, "=")
			fmt.Fprintf(out, "    %s=%s\n", printable(name), printable(value))
		}
	}
	fmt.Fprintln(out, "sshgate runs no shell: the session closes now.")
	if err := h.CloseSession(c.ctx, 0); err != nil {
		c.logf("close_session for %s failed: %s", esc.Quote(t.user), describe(err, c.ctx))
		return 1
	}
	c.logf("session of %s closed", esc.Quote(t.user))
	return 0
}

// printable returns s as it is when it is short and holds only printable
// characters, and quoted (escaped and bounded) otherwise, so that module
// and user text cannot drive the client's terminal.
func printable(s string) string {
	if len(s) > esc.Max || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) {
		return esc.Quote(s)
	}
	return s
}

// message returns a module's message or prompt as the client shows it:
// as it is when it holds only printable characters, line breaks and tabs
// and is at most PAM_MAX_MSG_SIZE (512) bytes long, quoted otherwise.
func message(s string) string {
	if len(s) > 512 || strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && r != '\t' && (!unicode.IsPrint(r) || r == unicode.ReplacementChar)
	}) {
		return esc.Quote(s)
	}
	return s
}

// crlf turns "\n" into "\r\n" for a client whose terminal is in raw mode.
type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(p), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
