//go:build race

package pam_test

// The race detector slows PAM loops tenfold; long loops scale down under it.
const raceEnabled = true
