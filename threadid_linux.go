package pam

import "syscall"

// threadID returns the calling OS thread's id.
func threadID() (int64, bool) { return int64(syscall.Gettid()), true }
