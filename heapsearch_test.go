//go:build linux

package pam_test

// Helpers for the tests that search the Go heap for a secret, beside
// countInGoHeap and offHeap (secretheap_test.go).

import (
	"math/rand/v2"
	"testing"
)

// secretMarker fills b (off the heap) with random letters: a secret that
// appears nowhere else in the process.
func secretMarker(b []byte) {
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
}

// countSecret counts the occurrences of marker in b one byte at a time.
// bytes.Index would load the marker into a vector register, which a signal
// arriving then (Go's preemption, the GC's) saves on a signal stack in the
// Go heap, where the next search finds it: measured, a 16-byte marker
// searched with bytes.Count was found once or twice more in one run out of
// three. Secrets are therefore never compared with the vectorised functions
// of package bytes in these tests.
func countSecret(b, marker []byte) int {
	n := 0
	for i := 0; i+len(marker) <= len(b); i++ {
		if b[i] != marker[0] {
			continue
		}
		j := 1
		for j < len(marker) && b[i+j] == marker[j] {
			j++
		}
		if j == len(marker) {
			n++
		}
	}
	return n
}

// sameSecret reports whether a and b hold the same bytes, compared one at a
// time for the reason countSecret gives.
func sameSecret(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// leftCopiesEveryTime runs one, a run that returns how many copies of a fresh
// secret it left in the Go heap, up to three times, and returns the counts
// if every run left some, else nil. A copy the code under test made is
// there every time; a signal that lands while code (libc's, the runtime's
// memmove) holds the secret in a vector register saves it on a signal stack
// in the Go heap, a rare and passing copy that is not the library's, seen
// once in a run under stress-ng.
func leftCopiesEveryTime(one func() int) []int {
	var left []int
	for range 3 {
		n := one()
		if n == 0 {
			return nil
		}
		left = append(left, n)
	}
	return left
}

// checkAnswerCopies judges one (as for leftCopiesEveryTime), a run that
// counts the copies of a fresh answer's first 16 bytes in the Go heap after
// the answer is wiped. For a control run, which keeps a copy, the search must
// find it, else it is blind; otherwise no copy may be left in every run.
func checkAnswerCopies(t *testing.T, control bool, one func() int) {
	t.Helper()
	if control {
		if one() == 0 {
			t.Fatal("the control run's kept copy was not found: the search is blind")
		}
		return
	}
	if left := leftCopiesEveryTime(one); left != nil {
		t.Errorf("copies of the answer's first 16 bytes left in the Go heap in each of three runs: %v", left)
	}
}
