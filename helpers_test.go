package pam_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gopam/pam"
)

func itoa(n int) string { return strconv.Itoa(n) }

// waitUntil polls done until it holds, for up to a minute, and fails the
// test with what state says otherwise. Things the library ends in the
// background (an abandoned call's transaction, its goroutine) take a
// moment; the minute only guards against a hang.
func waitUntil(t *testing.T, done func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal(state())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLive waits until the number of live transactions is back to n.
func waitLive(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, func() bool { return pam.LiveTransactions() <= n }, func() string {
		return fmt.Sprintf("%d live transactions, want %d", pam.LiveTransactions(), n)
	})
}

// waitGoroutines waits until the number of goroutines is back to n or below.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, func() bool { return runtime.NumGoroutine() <= n }, func() string {
		buf := make([]byte, 1<<16)
		return fmt.Sprintf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
	})
}

// gate makes pam_gotest calls block in C until the test opens it: Args goes
// on a pam_gotest line, each call appends a line to a file on entry and then
// waits for the gate's file. A test thus knows when a call is in C and
// decides when it goes on, with no clock.
type gate struct{ entered, open string }

func newGate(t *testing.T) *gate {
	dir := t.TempDir()
	return &gate{entered: filepath.Join(dir, "entered"), open: filepath.Join(dir, "open")}
}

// Args are the module arguments that make a call wait at the gate.
func (g *gate) Args() string { return "tidfile=" + g.entered + " waitfile=" + g.open }

// WaitEntered waits until n calls have reached the gate since it was made.
func (g *gate) WaitEntered(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, func() bool {
		b, _ := os.ReadFile(g.entered)
		return bytes.Count(b, []byte("\n")) >= n
	}, func() string { return fmt.Sprintf("fewer than %d calls reached the gate", n) })
}

// Open lets the waiting calls, and later ones, go on.
func (g *gate) Open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(g.open, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Close makes later calls wait again; the caller makes sure that none is
// still waiting to see the gate open.
func (g *gate) Close(t *testing.T) {
	t.Helper()
	if err := os.Remove(g.open); err != nil {
		t.Fatal(err)
	}
}
