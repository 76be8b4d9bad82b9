package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
	"golang.org/x/term"
)

// conversation answers the modules' messages for gopam: prompts from the
// scripted answers when there are any, else on the terminal, and it records
// every message in the transcript of the running operation.
type conversation struct {
	scripted bool
	answers  []answerSource // what is left of the scripted answers

	term pam.TerminalConversation

	// info and errs receive TEXT_INFO and ERROR_MSG texts, and prompt
	// the prompts of scripted answers; nil drops them (in --json mode the
	// transcript has them).
	info, errs, prompt io.Writer

	// events is where the running operation's transcript goes, nil
	// between operations. It is guarded by mu because an operation
	// abandoned at its timeout may still be conversing.
	mu     sync.Mutex
	events *[]convEvent
}

func newConversation(o *options, stdin *os.File, stdout, stderr io.Writer) *conversation {
	c := &conversation{scripted: o.scripted, answers: o.answers}
	// Prompts go to standard error, as with pamtester, so that standard
	// output holds only results (and, with --json, only the JSON).
	c.term = pam.TerminalConversation{In: stdin, Out: stderr, Err: stderr}
	if !o.json {
		c.info, c.errs, c.prompt = stdout, stderr, stderr
	} else if !o.scripted && term.IsTerminal(int(stdin.Fd())) {
		// Someone may be typing: they need to see what they answer.
		c.info, c.errs = stderr, stderr
	}
	return c
}

// Converse answers msgs one at a time.
func (c *conversation) Converse(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
	resps := make([]pam.Response, len(msgs))
	fail := func(ev *convEvent, err error) ([]pam.Response, error) {
		ev.Error = err.Error()
		c.record(*ev)
		for _, r := range resps {
			clear(r.Data)
		}
		return nil, err
	}
	for i, m := range msgs {
		ev := convEvent{Style: m.Style.String(), Text: m.Text, Prompt: m.Style.IsPrompt()}
		switch m.Style {
		case pam.TextInfo:
			if c.info != nil {
				fmt.Fprintln(c.info, m.Text)
			}
		case pam.ErrorMsg:
			if c.errs != nil {
				fmt.Fprintln(c.errs, m.Text)
			}
		case pam.PromptEchoOn, pam.PromptEchoOff:
			var ans []byte
			if c.scripted {
				var err error
				if ans, err = c.nextAnswer(ctx, m); err != nil {
					return fail(&ev, err)
				}
				ev.Source = "answer"
				if c.prompt != nil {
					if m.Style == pam.PromptEchoOn {
						fmt.Fprintf(c.prompt, "%s%s\n", m.Text, ans)
					} else {
						fmt.Fprintln(c.prompt, m.Text)
					}
				}
			} else {
				r, err := c.term.Converse(ctx, []pam.Message{m})
				if err != nil {
					return fail(&ev, err)
				}
				ans = r[0].Data
				ev.Source = "terminal"
			}
			shown := "***"
			if m.Style == pam.PromptEchoOn {
				shown = string(ans)
			}
			ev.Answer = &shown
			resps[i].Data = ans
		default:
			return fail(&ev, fmt.Errorf("gopam cannot answer a %v message", m.Style))
		}
		c.record(ev)
	}
	return resps, nil
}

// nextAnswer takes the next scripted answer for the prompt m: an --answer,
// or the next line of an answers file.
func (c *conversation) nextAnswer(ctx context.Context, m pam.Message) ([]byte, error) {
	for len(c.answers) > 0 {
		src := &c.answers[0]
		if src.lines == nil {
			ans := append([]byte(nil), src.text...)
			clear(src.text)
			c.answers = c.answers[1:]
			return ans, nil
		}
		r, err := src.lines.Converse(ctx, []pam.Message{m})
		if errors.Is(err, pam.ErrNoAnswer) {
			c.answers = c.answers[1:] // the file is used up
			continue
		}
		if err != nil {
			return nil, err
		}
		return r[0].Data, nil
	}
	return nil, fmt.Errorf("%w: %s", pam.ErrNoAnswer, esc.Quote(m.Text))
}

func (c *conversation) record(ev convEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.events != nil {
		*c.events = append(*c.events, ev)
	}
}

// recordTo directs the transcript to events; nil stops recording.
func (c *conversation) recordTo(events *[]convEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = events
}
