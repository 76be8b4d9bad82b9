package pam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/gopam/pam/internal/esc"
)

// TerminalConversation talks to the person at a terminal, as login(1) does:
// echo-off prompts (passwords) are read without echo, echo-on prompts read one
// line, errors go to Err and information to Out. Its zero value uses the
// process's standard input, output and error.
//
// A prompt fails at once with ErrNoTerminal when In is not a terminal, rather
// than wait on input no one will type. Binary prompts are refused. Reading a
// terminal cannot be interrupted, so the context is checked only between
// messages.
type TerminalConversation struct {
	In  *os.File  // nil means os.Stdin
	Out io.Writer // nil means os.Stdout
	Err io.Writer // nil means os.Stderr
}

// Converse answers msgs on the terminal.
func (t TerminalConversation) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	in, out, errw := t.In, t.Out, t.Err
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	if errw == nil {
		errw = os.Stderr
	}
	resps := make([]Response, len(msgs))
	fail := func(err error) ([]Response, error) {
		wipeResponses(resps)
		return nil, err
	}
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		switch m.Style {
		case TextInfo:
			fmt.Fprintln(out, m.Text)
		case ErrorMsg:
			fmt.Fprintln(errw, m.Text)
		case PromptEchoOff, PromptEchoOn:
			if !term.IsTerminal(int(in.Fd())) {
				return fail(fmt.Errorf("%w (prompt %s)", ErrNoTerminal, esc.Quote(m.Text)))
			}
			fmt.Fprint(out, m.Text)
			var ans []byte
			var err error
			if m.Style == PromptEchoOff {
				ans, err = term.ReadPassword(int(in.Fd()))
				fmt.Fprintln(out)
			} else {
				ans, err = readLine(in)
			}
			if err != nil {
				return fail(errorf("reading the answer to %s: %w", esc.Quote(m.Text), err))
			}
			resps[i].Data = ans
		default:
			return fail(fmt.Errorf("pam: the terminal cannot answer a %v message", m.Style))
		}
	}
	return resps, nil
}

// readLine reads one line a byte at a time, so that nothing past the newline
// is consumed, and returns it without the line ending.
func readLine(r io.Reader) ([]byte, error) {
	// Room for PAM_MAX_RESP_SIZE, so that a typical answer is never
	// copied by a growing slice and left behind.
	line := make([]byte, 0, 512)
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				if l := len(line); l > 0 && line[l-1] == '\r' {
					line = line[:l-1]
				}
				return line, nil
			}
			line = append(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return line, nil
			}
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			clear(line)
			return nil, err
		}
	}
}
