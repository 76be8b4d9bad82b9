package pam_test

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gopam/pam"
)

func itoa(n int) string { return strconv.Itoa(n) }

// waitUntil polls done until it holds, for up to ten seconds, and fails the
// test with what state says otherwise. Things the library ends in the
// background (an abandoned call's transaction, its goroutine) take a moment.
func waitUntil(t *testing.T, done func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
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
