//go:build !cgo

package module

// publishMask has no C side to tell without cgo: such a build can only be
// a helper process, which reports the mask in its hello.
func publishMask(uint32) {}
