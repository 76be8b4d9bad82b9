package main

/*
#cgo LDFLAGS: -lpam -lpthread -ldl
#include <stdlib.h>
#include "cpam.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// The PAM status codes the bench expects (Linux-PAM numbers, from the
// headers the C side is built against).
const (
	cSuccess = int(C.PAM_SUCCESS)
	cAuthErr = int(C.PAM_AUTH_ERR)
)

const (
	opAuth      = int(C.BENCH_OP_AUTH)
	opChauthtok = int(C.BENCH_OP_CHAUTHTOK)
	opLogin     = int(C.BENCH_OP_LOGIN)
)

// cTxn is a transaction description in C memory; it lives as long as the
// process.
type cTxn struct{ t *C.bench_txn }

func newCTxn(s *stacks, service string, op, expect int) cTxn {
	t := (*C.bench_txn)(C.calloc(1, C.size_t(unsafe.Sizeof(C.bench_txn{}))))
	t.service = C.CString(service)
	t.confdir = C.CString(s.dir)
	t.user = C.CString(s.userFor(service))
	t.answer = C.CString(benchAnswer)
	t.op = C.int(op)
	t.expect = C.int(expect)
	return cTxn{t}
}

// loop runs n transactions in one foreign call.
func (t cTxn) loop(n int) int { return int(C.bench_loop(t.t, C.long(n))) }

// one runs one transaction in one foreign call and reports whether it ended
// as expected.
func (t cTxn) one() bool { return int(C.bench_one(t.t)) == int(t.t.expect) }

// split runs one transaction as three foreign calls, the shape of a Go
// binding without a worker thread.
func (t cTxn) split() bool {
	var rc C.int
	h := C.bench_start(t.t, &rc)
	if rc != C.PAM_SUCCESS {
		if h != nil {
			C.bench_end(h, rc)
		}
		return false
	}
	rc = C.bench_op(h, t.t.op)
	C.bench_end(h, rc)
	return int(rc) == int(t.t.expect)
}

// parallel runs n transactions in each of threads C threads.
func (t cTxn) parallel(n, threads int) int {
	return int(C.bench_parallel(t.t, C.long(n), C.int(threads)))
}

// concurrent runs n transactions at once, one C thread each, and returns the
// number of unexpected statuses, of threads that could not start, and each
// transaction's duration in seconds (-1 when its thread did not start).
func (t cTxn) concurrent(n, stackKiB int) (bad, notStarted int, secs []float64) {
	ns := (*C.double)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.double(0)))))
	defer C.free(unsafe.Pointer(ns))
	var ns0 C.int
	bad = int(C.bench_concurrent(t.t, C.int(n), C.size_t(stackKiB), ns, &ns0))
	secs = make([]float64, n)
	for i, v := range unsafe.Slice(ns, n) {
		if v < 0 {
			secs[i] = -1
		} else {
			secs[i] = float64(v) / 1e9
		}
	}
	return bad, int(ns0), secs
}

// heldModules is a set of modules the process holds loaded with dlopen, as a
// C program that keeps its stack's modules loaded would (c_warm).
type heldModules struct {
	handles *unsafe.Pointer
	n       int
}

// holdModules dlopens every path; the caller releases them.
func holdModules(paths []string) (heldModules, error) {
	n := len(paths)
	cs := make([]*C.char, n)
	for i, p := range paths {
		cs[i] = C.CString(p)
	}
	hs := (*unsafe.Pointer)(C.calloc(C.size_t(max(n, 1)), C.size_t(unsafe.Sizeof(unsafe.Pointer(nil)))))
	var arr **C.char
	if n > 0 {
		arr = (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		copy(unsafe.Slice(arr, n), cs)
	}
	bad := int(C.bench_hold(arr, C.int(n), hs))
	for _, c := range cs {
		C.free(unsafe.Pointer(c))
	}
	C.free(unsafe.Pointer(arr))
	h := heldModules{hs, n}
	if bad != 0 {
		h.release()
		return heldModules{}, fmt.Errorf("c_warm: %d of %d modules could not be opened", bad, n)
	}
	return h, nil
}

func (h heldModules) release() {
	if h.handles == nil {
		return
	}
	C.bench_release(h.handles, C.int(h.n))
	C.free(unsafe.Pointer(h.handles))
}

// mallocInUse returns glibc's bytes in use over all arenas.
func mallocInUse() uint64 { return uint64(C.bench_malloc_inuse()) }
