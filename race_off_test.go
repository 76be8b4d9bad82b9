//go:build !race

package pam_test

const raceEnabled = false
