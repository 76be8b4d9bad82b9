//go:build !linux

package pam

// threadID is unknown here: reentrant calls from callbacks are not detected.
func threadID() (int64, bool) { return 0, false }
