package libpam

import (
	"runtime"
	"sync"

	"github.com/ebitengine/purego"
)

// mallinfo2 mirrors glibc's struct mallinfo2 (ten size_t fields); only the
// two gopam reads are named.
type mallinfo2 struct {
	_, _, _, _ uintptr // arena, ordblks, smblks, hblks
	hblkhd     uintptr
	_, _       uintptr // usmblks, fsmblks
	uordblks   uintptr
	_, _       uintptr // fordblks, keepcost
}

var mallinfo struct {
	once sync.Once
	fn   func() mallinfo2
}

// MallocInUse returns the bytes the C heap has handed out and not had back
// (glibc's mallinfo2: uordblks + hblkhd), for leak tests and benchmarks. ok is
// false where the C library has no mallinfo2.
func MallocInUse() (bytes uint64, ok bool) {
	mallinfo.once.Do(func() {
		if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
			return
		}
		if _, err := Load(); err != nil {
			return
		}
		h, _, err := dlopenFirst([]string{"libc.so.6"})
		if err != nil {
			return
		}
		sym, err := purego.Dlsym(h, "mallinfo2")
		if err != nil || sym == 0 {
			return
		}
		purego.RegisterFunc(&mallinfo.fn, sym)
	})
	if mallinfo.fn == nil {
		return 0, false
	}
	m := mallinfo.fn()
	return uint64(m.uordblks + m.hblkhd), true
}
