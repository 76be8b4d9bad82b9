//go:build linux

package pam_test

import (
	"context"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gopam/pam"
)

// terminalAnswer has TerminalConversation read one answer typed on a pty
// (input, which lives off the heap) and returns it; type runs once the
// conversation is about to read.
func terminalAnswer(t *testing.T, style pam.Style, input []byte, echo bool, after func(master, slave int)) ([]byte, error) {
	t.Helper()
	master, slave := openPTY(t)
	if !echo {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		tio.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := master.Write(input); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if after != nil {
		go func() {
			defer close(done)
			after(int(master.Fd()), int(slave.Fd()))
		}()
	} else {
		close(done)
	}
	conv := pam.TerminalConversation{In: slave, Out: io.Discard, Err: io.Discard}
	r, err := conv.Converse(context.Background(), []pam.Message{{Style: style, Text: "Answer: "}})
	<-done
	if err != nil {
		return nil, err
	}
	return r[0].Data, nil
}

// TestTerminalLeavesNoSecretInHeap is issue 13 item 4's regression test: a
// password read from the terminal leaves no copy, whole or partial, in the
// Go heap once the answer is wiped (as gopam wipes it once libpam has it),
// for a 40-byte password, an echo-on line past 512 bytes, and a read that
// fails mid-line. A control run that keeps one copy must find it.
func TestTerminalLeavesNoSecretInHeap(t *testing.T) {
	type tc struct {
		name  string
		style pam.Style
		size  int
		fail  bool // end the read with an I/O error mid-line
		keep  bool // the control: keep a copy of the answer
	}
	for _, c := range []tc{
		{"control", pam.PromptEchoOff, 40, false, true},
		{"password", pam.PromptEchoOff, 40, false, false},
		{"long echo-on line", pam.PromptEchoOn, 1500, false, false},
		{"long password", pam.PromptEchoOff, 1500, false, false},
		{"read failing mid-line", pam.PromptEchoOff, 40, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// one reads a fresh secret and returns how many copies of its
			// first 16 bytes the Go heap holds after the answer is wiped
			// (the control's kept copy aside).
			one := func() int {
				input := offHeap(t, c.size+1)
				secret := input[:c.size]
				secretMarker(secret)
				var after func(master, slave int)
				if c.fail {
					// The typed bytes end with VEOF, so the reader gets them
					// without a line end; once it has, the terminal hangs up.
					input[c.size] = 4
					after = func(master, slave int) {
						waitUntil(t, func() bool {
							n, err := unix.IoctlGetInt(slave, unix.TIOCINQ)
							return err == nil && n == 0
						}, func() string { return "the conversation did not read the input" })
						unix.Close(master)
					}
				} else {
					input[c.size] = '\n'
				}
				var kept []byte
				ans, err := terminalAnswer(t, c.style, input, false, after)
				switch {
				case c.fail && err == nil:
					t.Fatal("the read did not fail")
				case !c.fail && err != nil:
					t.Fatal(err)
				case !c.fail && !sameSecret(ans, secret):
					t.Fatalf("the answer differs from what was typed (%d bytes, want %d)", len(ans), len(secret))
				}
				if c.keep {
					kept = append(kept, ans...)
				}
				clear(ans)
				n := countInGoHeap(t, secret[:16])
				clear(kept)
				return n
			}
			checkAnswerCopies(t, c.keep, one)
		})
	}
}

// TestLinesLeaveNoSecretInHeap: answers read from a pipe leave no copy in
// the Go heap once wiped, a line past 512 bytes included; the control keeps
// one and must find it.
func TestLinesLeaveNoSecretInHeap(t *testing.T) {
	for _, c := range []struct {
		name string
		size int
		keep bool
	}{{"control", 40, true}, {"password", 40, false}, {"long line", 3000, false}} {
		t.Run(c.name, func(t *testing.T) {
			one := func() int {
				input := offHeap(t, c.size+1)
				secretMarker(input[:c.size])
				input[c.size] = '\n'
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				go func() {
					w.Write(input)
					w.Close()
				}()
				resps, err := pam.Lines(r, nil).Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOff}})
				if err != nil || !sameSecret(resps[0].Data, input[:c.size]) {
					t.Fatalf("the answer differs from the line (%v)", err)
				}
				var kept []byte
				if c.keep {
					kept = append(kept, resps[0].Data...)
				}
				clear(resps[0].Data)
				n := countInGoHeap(t, input[:16])
				clear(kept)
				return n
			}
			checkAnswerCopies(t, c.keep, one)
		})
	}
}
