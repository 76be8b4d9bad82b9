package pam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gopam/pam/internal/esc"
)

// Lines returns a Conversation that answers prompts from in, one line per
// prompt in order whatever its style, as a script or a test feeds them
// through a pipe or a file ("\n" or "\r\n" ends a line, and a last line
// without one counts). It writes a transcript to out (nil discards it):
// TEXT_INFO and ERROR_MSG messages on a line each, each prompt followed by
// its answer for echo-on prompts and by a bare line end for echo-off ones,
// whose answers are never written back.
//
// in is read one byte at a time, so that nothing past an answer's line end
// is consumed, straight into a buffer the conversation owns: every copy it
// drops is wiped, including the partial line of a failed read; the answer
// handed to gopam is wiped once libpam has it. A prompt after the last line
// fails with ErrNoAnswer, a binary prompt is refused, and an answer longer
// than 64 KiB fails. ctx is checked before each message; a read in progress
// is not interrupted, so in should be a source that ends (a file, a pipe
// whose writer closes). The conversation is safe for concurrent use: one
// batch at a time reads in.
func Lines(in io.Reader, out io.Writer) *LineConversation {
	if out == nil {
		out = io.Discard
	}
	return &LineConversation{in: in, out: out}
}

// LineConversation is the Conversation Lines returns.
type LineConversation struct {
	mu  sync.Mutex
	in  io.Reader
	out io.Writer
	eof bool // in has ended: every later prompt fails
}

// Converse answers the prompts of msgs with the next lines of the input.
func (l *LineConversation) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return answerEach(ctx, msgs, "a line conversation", l.out, l.out, func(m Message) ([]byte, error) {
		fmt.Fprint(l.out, m.Text)
		ans, err := l.next()
		if err == nil && m.Style == PromptEchoOn {
			l.out.Write(ans)
		}
		fmt.Fprintln(l.out)
		return ans, err
	})
}

// answerEach is the loop of the conversations that show messages and read
// answers one prompt at a time: it checks ctx before each message, writes
// TEXT_INFO to info and ERROR_MSG to errs (a line each), asks answer for
// each echo-off and echo-on prompt, and refuses other styles in the name of
// who. The first failure wipes the answers read so far and names the prompt.
func answerEach(ctx context.Context, msgs []Message, who string, info, errs io.Writer, answer func(Message) ([]byte, error)) ([]Response, error) {
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
			fmt.Fprintln(info, m.Text)
		case ErrorMsg:
			fmt.Fprintln(errs, m.Text)
		case PromptEchoOff, PromptEchoOn:
			ans, err := answer(m)
			if err != nil {
				return fail(fmt.Errorf("pam: reading the answer to %s: %w", esc.Quote(m.Text), err))
			}
			resps[i].Data = ans
		default:
			return fail(fmt.Errorf("pam: %s cannot answer a %v message", who, m.Style))
		}
	}
	return resps, nil
}

// next reads the next answer line.
func (l *LineConversation) next() ([]byte, error) {
	if l.eof {
		return nil, ErrNoAnswer
	}
	ans, err := readAnswer(func(p []byte, _ bool) (int, error) {
		for range 100 {
			if n, err := l.in.Read(p); n > 0 || err != nil {
				return n, err
			}
		}
		return 0, io.ErrNoProgress
	})
	if errors.Is(err, io.ErrUnexpectedEOF) {
		l.eof = true
		return nil, ErrNoAnswer
	}
	return ans, err
}
