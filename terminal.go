package pam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/gopam/pam/internal/esc"
)

// TerminalConversation talks to the person at a terminal, as login(1) does:
// echo-off prompts (passwords) are read without echo, echo-on prompts read one
// line. Prompts and TEXT_INFO messages go to Out and ERROR_MSG messages to
// Err; both default to standard error, as with Linux-PAM's misc_conv and the
// gopam command, so that "tool > file" still shows the prompts on the
// terminal and leaves standard output to the program. Its zero value reads
// standard input.
//
// A prompt fails at once with ErrNoTerminal when In is not a terminal, rather
// than wait on input no one will type. Binary prompts are refused.
//
// A read gives up when the operation's context ends, at once (on Linux and
// FreeBSD; where the terminal cannot be polled, as on some macOS versions,
// only between lines): the terminal's echo is then restored, and nothing of
// the input is consumed, so the next line the user types goes to whoever
// reads next. The answer is read into a buffer the conversation owns, and
// every copy it drops is wiped, the partial answer of a failed read
// included.
type TerminalConversation struct {
	In  *os.File  // nil means os.Stdin
	Out io.Writer // prompts and information; nil means os.Stderr
	Err io.Writer // errors; nil means os.Stderr
}

// Converse answers msgs on the terminal.
func (t TerminalConversation) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	in, out, errw := t.In, t.Out, t.Err
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stderr
	}
	if errw == nil {
		errw = os.Stderr
	}
	return answerEach(ctx, msgs, "the terminal", out, errw, func(m Message) ([]byte, error) {
		fd := int(in.Fd())
		if !term.IsTerminal(fd) {
			return nil, fmt.Errorf("%w (prompt %s)", ErrNoTerminal, esc.Quote(m.Text))
		}
		return readTerminal(ctx, fd, m.Text, m.Style == PromptEchoOff, out)
	})
}

// readTerminal writes prompt to out and reads one line from the terminal fd,
// without echo when noEcho is set (then restoring the terminal's state and
// ending the line on out however the read ends). It gives up when ctx ends.
func readTerminal(ctx context.Context, fd int, prompt string, noEcho bool, out io.Writer) ([]byte, error) {
	if noEcho {
		saved, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return nil, err
		}
		st := *saved
		st.Lflag &^= unix.ECHO
		st.Lflag |= unix.ICANON | unix.ISIG
		st.Iflag |= unix.ICRNL
		// Set at once, never with a flush: a line typed ahead is the
		// user's answer and must not be thrown away.
		if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &st); err != nil {
			return nil, err
		}
		defer func() {
			unix.IoctlSetTermios(fd, ioctlSetTermios, saved)
			fmt.Fprintln(out) // the line end the user's Enter did not echo
		}()
	}
	// Only now that echo is off: what is typed once the prompt shows is
	// never echoed.
	fmt.Fprint(out, prompt)
	r, err := newTTYReader(ctx, fd)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return readAnswer(r.read)
}

// ttyReader reads a terminal and gives up when its context ends, leaving
// unread input in the terminal's queue. It polls the terminal together with
// a pipe whose write end is closed when the context ends.
type ttyReader struct {
	ctx    context.Context
	fd     int
	wake   *os.File // readable (at EOF) once the context has ended
	cancel *os.File
	stop   func() bool
}

func newTTYReader(ctx context.Context, fd int) (*ttyReader, error) {
	t := &ttyReader{ctx: ctx, fd: fd}
	if ctx.Done() == nil {
		return t, nil
	}
	var err error
	if t.wake, t.cancel, err = os.Pipe(); err != nil {
		return nil, err
	}
	t.stop = context.AfterFunc(ctx, func() { t.cancel.Close() })
	return t, nil
}

func (t *ttyReader) close() {
	if t.wake == nil {
		return
	}
	t.stop()
	t.cancel.Close()
	t.wake.Close()
}

// read reads into p once the terminal has input. midLine says that part of
// the line was read already: the rest is read even if the context has ended,
// so that a line is consumed whole or not at all.
func (t *ttyReader) read(p []byte, midLine bool) (int, error) {
	if t.wake != nil {
		fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}, {Fd: int32(t.wake.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0, err
			}
			ready := fds[0].Revents != 0
			if fds[1].Revents != 0 && !(ready && midLine) {
				return 0, context.Cause(t.ctx)
			}
			if ready {
				break // POLLNVAL too: a terminal that cannot be polled is read as is
			}
		}
	}
	for {
		n, err := unix.Read(t.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EIO && !midLine:
			return 0, io.EOF // the terminal hung up
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// maxAnswer bounds the length of one answer read from a terminal or a
// stream.
const maxAnswer = 64 << 10

// errAnswerTooLong is the error of an answer longer than maxAnswer.
var errAnswerTooLong = fmt.Errorf("the answer is longer than %d bytes", maxAnswer)

// readAnswer reads one line with read, one byte at a time so that nothing
// past the line end is consumed, straight into a buffer it owns, and returns
// it without the line end ("\n" or "\r\n"). A final line without a line end
// counts; EOF before any byte is io.ErrUnexpectedEOF. Every buffer it drops
// is wiped: the outgrown ones, and the partial line of a failed read.
func readAnswer(read func(p []byte, midLine bool) (int, error)) ([]byte, error) {
	// Room for PAM_MAX_RESP_SIZE, so that a typical answer is never moved.
	buf := make([]byte, 512)
	n := 0
	for {
		if n == len(buf) {
			if n >= maxAnswer {
				clear(buf)
				return nil, errAnswerTooLong
			}
			bigger := make([]byte, 2*len(buf))
			// One byte at a time: copy's vector registers would hold
			// 16 bytes of the answer, which a signal arriving then saves
			// on a signal stack in the Go heap.
			for i, c := range buf {
				bigger[i] = c
			}
			clear(buf)
			buf = bigger
		}
		k, err := read(buf[n:n+1], n > 0)
		if k == 1 {
			if buf[n] == '\n' {
				buf[n] = 0
				if n > 0 && buf[n-1] == '\r' {
					n--
					buf[n] = 0
				}
				return buf[:n:n], nil
			}
			n++
			continue
		}
		if errors.Is(err, io.EOF) && n > 0 {
			return buf[:n:n], nil
		}
		clear(buf)
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return nil, err
	}
}
