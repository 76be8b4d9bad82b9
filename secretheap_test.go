//go:build linux

package pam_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// offHeap returns n bytes of memory outside the Go heap (an anonymous
// mapping), for data whose copies a test counts in the Go heap: the secret
// itself, and the buffer the heap is read into.
func offHeap(t *testing.T, n int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

// newMarker writes a random secret of 32 hex digits into memory outside the
// Go heap.
func newMarker(t *testing.T) []byte {
	t.Helper()
	raw := offHeap(t, 4096)
	rand.Read(raw[:16])
	hex.Encode(raw[16:48], raw[:16])
	clear(raw[:16])
	return raw[16:48]
}

// goHeapRanges returns the address ranges of the mappings that hold the Go
// heap: the writable anonymous mappings that contain objects just allocated
// in it, of every size class a secret string could have.
func goHeapRanges(t *testing.T) [][2]uintptr {
	t.Helper()
	var samples []uintptr
	var keep [][]byte
	for size := 8; size <= 1<<20; size *= 2 {
		for range 8 {
			b := make([]byte, size)
			keep = append(keep, b)
			samples = append(samples, uintptr(unsafe.Pointer(&b[0])))
		}
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasPrefix(fields[1], "rw") || fields[4] != "0" || len(fields) > 5 {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, p := range samples {
			if uintptr(a) <= p && p < uintptr(b) {
				out = append(out, [2]uintptr{uintptr(a), uintptr(b)})
				break
			}
		}
	}
	runtime.KeepAlive(keep)
	if len(out) == 0 {
		t.Fatal("found no mapping of the Go heap in /proc/self/maps")
	}
	return out
}

// countInGoHeap counts the copies of marker in the Go heap. The heap is read
// through /proc/self/mem into memory outside it, so that the search makes no
// copy of its own.
func countInGoHeap(t *testing.T, marker []byte) int {
	t.Helper()
	runtime.GC()
	runtime.GC()
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	const chunk = 1 << 20
	buf := offHeap(t, chunk+len(marker))
	count := 0
	for _, r := range goHeapRanges(t) {
		carry := 0 // bytes of the previous chunk kept in front of buf
		for off := r[0]; off < r[1]; off += chunk {
			n := min(chunk, int(r[1]-off))
			got, err := syscall.Pread(int(mem.Fd()), buf[carry:carry+n], int64(off))
			if err != nil || got != n {
				t.Fatalf("reading the Go heap at %#x: %d bytes, %v", off, got, err)
			}
			data := buf[:carry+n]
			count += countSecret(data, marker)
			carry = min(len(marker)-1, len(data))
			copy(buf, data[len(data)-carry:])
		}
	}
	clear(buf)
	return count
}

// TestRegressScrubLeavesNoCopy: the scrub of a secret a module left in the
// PAM environment must not leave a copy of it in the Go heap. A control
// transaction that scrubs nothing tells how many copies the rest of the
// process makes (none are expected either).
func TestRegressScrubLeavesNoCopy(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	run := func(name string, sensitive []string) int {
		marker := newMarker(t)
		// The service file is built outside the Go heap too.
		line := offHeap(t, 4096)
		n := copy(line, "auth required "+mod+" setenv=PAM_AUTHTOK=")
		n += copy(line[n:], marker)
		n += copy(line[n:], " setenv=LANG=C\n")
		if err := os.WriteFile(filepath.Join(st.Dir(), name), line[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		clear(line)
		h, err := pam.Start(pam.Config{Service: name, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), SensitiveEnv: sensitive})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Authenticate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		return countInGoHeap(t, marker)
	}
	// The search must see a copy that is there.
	probe := newMarker(t)
	seen := make([]byte, len(probe))
	copy(seen, probe)
	if n := countInGoHeap(t, probe); n < 1 {
		t.Fatalf("the search found %d copies of a secret held in the Go heap, want 1", n)
	}
	clear(seen)
	runtime.KeepAlive(seen)
	// Run up to three times with a new secret (leftCopiesEveryTime says
	// why): the test fails only if the scrub left more copies than the
	// control every time.
	attempt := 0
	excess := leftCopiesEveryTime(func() int {
		attempt++
		control := run(fmt.Sprintf("control%d", attempt), []string{})
		scrubbed := run(fmt.Sprintf("scrubbed%d", attempt), nil)
		t.Logf("copies of the secret in the Go heap: %d after the default scrub, %d without scrubbing", scrubbed, control)
		return max(scrubbed-control, 0)
	})
	if excess != nil {
		t.Errorf("the scrub left more copies of the secret in the Go heap than no scrubbing in each of three runs (%v more; the counts are logged)", excess)
	}
}
