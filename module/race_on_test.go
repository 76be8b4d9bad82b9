//go:build race

package module_test

// raceEnabled: the race detector instruments only the test binary, not
// the C hosts these tests run, so the long runs are cut short under it.
const raceEnabled = true
