// Command gopam runs PAM transactions from the command line. It accepts
// pamtester's invocation, so that scripts written for pamtester keep working,
// and adds private stacks (--confdir), scripted answers, a JSON transcript and
// a self-contained demonstration (gopam demo). Run "gopam --help" for the
// manual.
//
// gopam loads libpam at run time, so it builds with CGO_ENABLED=0:
//
//	go install github.com/gopam/pam/cmd/gopam@latest
package main

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// Exit statuses. PAM failures exit 1, as pamtester does.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitSignal  = 130
)

//go:embed help.txt
var helpText string

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "gopam: %s\n", oneLine(err.Error()))
		return exitUsage
	}
	if o.help {
		io.WriteString(stdout, helpText)
		return exitOK
	}
	defer wipeAnswers(o)

	// An interrupted or timed-out password prompt must not leave the
	// terminal without echo.
	restore := saveTerminal(stdin)
	defer restore()
	stopSignals := onSignal(func() {
		restore()
		runCleanups()
		fmt.Fprintln(stderr, "\ngopam: interrupted")
		os.Exit(exitSignal)
	})
	defer stopSignals()

	if o.demo {
		return runDemo(o, stdin, stdout, stderr)
	}
	t := newTransaction(o, "pamtester", stdin, stdout, stderr)
	return t.run()
}

// oneLine keeps an error message on one line whatever the input held.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

func wipeAnswers(o *options) {
	for _, a := range o.answers {
		clear(a.text)
		clear(a.data)
	}
}

// saveTerminal records the state of stdin when it is a terminal and returns a
// function that puts it back.
func saveTerminal(stdin *os.File) func() {
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return func() {}
	}
	st, err := term.GetState(fd)
	if err != nil {
		return func() {}
	}
	return func() { term.Restore(fd, st) }
}

// onSignal calls f when the user interrupts the program; the returned
// function stops listening.
func onSignal(f func()) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			f()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run when the program ends, also on an interrupt.
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func runCleanups() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}
