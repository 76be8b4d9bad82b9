package pam_test

// A search of this process's Go heap for a secret, for the tests that check
// that no copy of a password outlives its use. Shared by every such test:
// keep one.

import (
	"bufio"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Go reserves its heap arenas in one hint region of 1 TiB (at 0x00c0<<32,
// or at a random base since Go 1.26); the search reads the private anonymous
// writable mappings of the regions where heap objects lie.
const regionShift = 40

// offHeap returns n bytes of memory outside the Go heap (an anonymous
// mapping), for secrets and copies that must not be found by the search.
func offHeap(t *testing.T, n int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

// secretMarker fills b (off the heap) with random letters: a secret that
// appears nowhere else in the process.
func secretMarker(b []byte) {
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
}

// countSecret counts the occurrences of marker in b one byte at a time.
// bytes.Count would load the marker into a vector register, which a signal
// (Go's preemption, the GC's) saves on a signal stack in the Go heap, where
// the next search would find it: secrets must never be compared with the
// vectorised functions of package bytes in these tests.
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

// goHeapCount runs two garbage collections, then counts the occurrences of
// marker (which must live off the heap) in the Go heap arenas, read from
// /proc/self/mem into memory outside the Go heap.
func goHeapCount(t *testing.T, marker []byte) int {
	t.Helper()
	if runtime.GOOS != "linux" || unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the heap search reads Linux's /proc/self/mem on 64-bit platforms")
	}
	runtime.GC()
	runtime.GC()
	small, large := new([64]byte), new([1 << 20]byte) // heap objects: their mappings must be searched
	probes := []uintptr{uintptr(unsafe.Pointer(small)), uintptr(unsafe.Pointer(large))}
	regions := map[uintptr]bool{}
	for _, p := range probes {
		regions[p>>regionShift] = true
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	type span struct{ lo, hi uintptr }
	var spans []span
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || !strings.HasPrefix(f[1], "rw") {
			continue // file-backed mappings have a sixth field
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && regions[uintptr(l)>>regionShift] {
			spans = append(spans, span{uintptr(l), uintptr(h)})
		}
	}
	for _, p := range probes {
		covered := false
		for _, s := range spans {
			covered = covered || (s.lo <= p && p < s.hi)
		}
		if !covered {
			t.Fatalf("the heap object at %#x is in none of the mappings searched: %x", p, spans)
		}
	}
	runtime.KeepAlive(small)
	runtime.KeepAlive(large)
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	const chunk = 4 << 20
	buf := offHeap(t, chunk+len(marker))
	count := 0
	for _, s := range spans {
		for off := s.lo; off < s.hi; off += chunk {
			n := int(min(s.hi-off, uintptr(chunk+len(marker)-1)))
			if n, _ = mem.ReadAt(buf[:n], int64(off)); n > 0 {
				// Chunks overlap by len(marker)-1 bytes, so that a copy
				// across a boundary is found once.
				count += countSecret(buf[:n], marker)
			}
		}
	}
	return count
}
