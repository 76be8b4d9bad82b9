package libpam

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"
)

// glibc's dlopen flags (dlfcn.h) that purego does not define.
const (
	rtldLazy   = 0x1
	rtldNoload = 0x4
)

// The entry points of a PAM module; a loaded object that defines one of them
// itself is a module.
var moduleSymbols = []string{"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
	"pam_sm_open_session", "pam_sm_close_session", "pam_sm_chauthtok"}

// modSys is the Linux part of the module cache: the loader's object list
// (dl_iterate_phdr), references (dlopen with RTLD_NOLOAD, dlclose), and an
// inotify watch on the directories of the cached modules, so that checking
// for changed files before a start costs one read that finds nothing.
type modSys struct {
	iterate, dlopen, dlclosefn, dlsym, dladdr uintptr
	callback                                  uintptr
	dirs                                      map[string]bool  // watched directories
	wds                                       map[int32]string // watch descriptor -> directory
	// inotify and unwatched are read without the cache's mutex, by the look
	// before each start (pending).
	inotify   atomic.Int32 // the watch's descriptor plus one, once made; 0 before
	unwatched atomic.Bool  // a directory could not be watched
}

// inotifyFD returns the watch's descriptor, or -1 before it is made.
func (s *modSys) inotifyFD() int { return int(s.inotify.Load()) - 1 }

// phdrInfo mirrors the start of glibc's struct dl_phdr_info on 64-bit
// systems; dlpi_adds and dlpi_subs are present when the size passed to the
// callback covers them.
type phdrInfo struct {
	addr  uintptr
	name  unsafe.Pointer
	phdr  uintptr
	phnum uint16
	adds  uint64
	subs  uint64
}

// walk is what the dl_iterate_phdr callback fills. The cache's mutex guards
// it; the callback runs on the calling thread before dl_iterate_phdr
// returns.
var walk struct {
	all        bool // list every object, else read the counters and stop
	adds, subs uint64
	counted    bool
	objs       []object
}

func phdrCallback(info, size, _ uintptr) uintptr {
	p := (*phdrInfo)(cptr(info))
	if size >= unsafe.Offsetof(p.subs)+8 {
		walk.adds, walk.subs, walk.counted = p.adds, p.subs, true
	}
	if !walk.all {
		return 1 // the counters are the same in every entry
	}
	walk.objs = append(walk.objs, object{name: goString(p.name), addr: p.phdr})
	return 0
}

// The callback is made once: purego's callbacks are never freed.
var phdrCallbackPtr = sync.OnceValue(func() uintptr { return purego.NewCallback(phdrCallback) })

func (s *modSys) init(l *Lib) bool {
	if unsafe.Sizeof(uintptr(0)) != 8 || l.libc == 0 {
		return false
	}
	if s.iterate == 0 {
		sym := func(name string) uintptr { p, _ := purego.Dlsym(l.libc, name); return p }
		s.iterate, s.dlopen, s.dlclosefn, s.dlsym, s.dladdr =
			sym("dl_iterate_phdr"), sym("dlopen"), sym("dlclose"), sym("dlsym"), sym("dladdr")
		if s.iterate == 0 || s.dlopen == 0 || s.dlclosefn == 0 || s.dlsym == 0 || s.dladdr == 0 {
			s.iterate = 0
			return false
		}
		s.callback = phdrCallbackPtr()
	}
	if s.inotifyFD() < 0 {
		fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
		if err != nil {
			return false // without a watch, changed files would go unseen
		}
		s.dirs, s.wds = map[string]bool{}, map[int32]string{}
		s.inotify.Store(int32(fd) + 1)
	}
	return true
}

// adds returns the loader's count of objects added since the process began.
func (s *modSys) adds() (uint64, bool) {
	a, _, ok := s.counts()
	return a, ok
}

// counts returns the loader's counts of objects added and removed.
func (s *modSys) counts() (adds, subs uint64, ok bool) {
	walk.all, walk.counted = false, false
	purego.SyscallN(s.iterate, s.callback, 0)
	return walk.adds, walk.subs, walk.counted
}

// objects lists the loaded objects.
func (s *modSys) objects() []object {
	walk.all, walk.objs = true, nil
	purego.SyscallN(s.iterate, s.callback, 0)
	objs := walk.objs
	walk.all, walk.objs = false, nil
	return objs
}

// noload takes a reference on the loaded object called name, or returns 0
// if none is loaded: RTLD_NOLOAD never loads anything. RTLD_LAZY leaves an
// object's binding mode as its loader chose it (libpam: RTLD_NOW).
func (s *modSys) noload(name string) uintptr {
	c, err := CString(name)
	if err != nil {
		return 0
	}
	h, _, _ := purego.SyscallN(s.dlopen, uintptr(unsafe.Pointer(&c[0])), rtldLazy|rtldNoload)
	return h
}

func (s *modSys) dlclose(h uintptr) { purego.SyscallN(s.dlclosefn, h) }

// isModule reports whether the object behind h (called name) defines a PAM
// module entry point itself, rather than through a dependency.
func (s *modSys) isModule(h uintptr, name string) bool {
	for _, sym := range moduleSymbols {
		c, _ := CString(sym)
		p, _, _ := purego.SyscallN(s.dlsym, h, uintptr(unsafe.Pointer(&c[0])))
		if p == 0 {
			continue
		}
		var info dlInfo
		if r, _, _ := purego.SyscallN(s.dladdr, p, uintptr(unsafe.Pointer(&info))); r != 0 && goString(info.fname) == name {
			return true
		}
	}
	return false
}

// watch adds the directories of a cached module (as named, and after
// symbolic links) to the inotify watch.
func (s *modSys) watch(name string) {
	dirs := []string{filepath.Dir(name)}
	if real, err := filepath.EvalSymlinks(name); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if s.dirs[d] {
			continue
		}
		const mask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_TO | syscall.IN_MOVED_FROM |
			syscall.IN_MODIFY | syscall.IN_ATTRIB | syscall.IN_CLOSE_WRITE | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF
		if wd, err := syscall.InotifyAddWatch(s.inotifyFD(), d, mask); err == nil {
			s.dirs[d], s.wds[int32(wd)] = true, d
		} else {
			// Unwatched: check every start rather than miss a change.
			s.dirs[d] = false
			s.unwatched.Store(true)
		}
	}
}

// pending reports, without reading them, whether the watch holds events (or
// some directory cannot be watched, or the count cannot be had): then
// changed must look. It needs no lock.
func (s *modSys) pending() bool {
	fd := s.inotifyFD()
	if fd < 0 {
		return false // no watch was ever made, so nothing was cached
	}
	if s.unwatched.Load() {
		return true
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
	return err != nil || n > 0
}

// changed reports whether a watched directory saw any change since the last
// call (or some directory cannot be watched), draining the events.
func (s *modSys) changed() bool {
	var buf [4096]byte
	any := s.unwatched.Load()
	for {
		n, err := syscall.Read(s.inotifyFD(), buf[:])
		if n <= 0 || err != nil {
			return any
		}
		any = true
		// A watch removed with its directory is added again by the
		// next module cached there.
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&syscall.IN_IGNORED != 0 {
				s.forget(ev.Wd)
			}
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// forget drops a watch the kernel removed (its directory is gone).
func (s *modSys) forget(wd int32) {
	if d, ok := s.wds[wd]; ok {
		delete(s.wds, wd)
		delete(s.dirs, d)
	}
}

// statFile returns the identity of the file at name, following links.
func statFile(name string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return fileID{}, false
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtimeNs: st.Mtim.Nano()}, true
}

// readMaps reads the file-backed mappings of the process.
func readMaps() []mapping {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	var out []mapping
	for line := range bytes.Lines(b) {
		// start-end perms offset major:minor inode path
		f := bytes.Fields(line)
		if len(f) < 6 {
			continue
		}
		rng := bytes.SplitN(f[0], []byte("-"), 2)
		dev := bytes.SplitN(f[3], []byte(":"), 2)
		if len(rng) != 2 || len(dev) != 2 {
			continue
		}
		start, e1 := strconv.ParseUint(string(rng[0]), 16, 64)
		end, e2 := strconv.ParseUint(string(rng[1]), 16, 64)
		major, e3 := strconv.ParseUint(string(dev[0]), 16, 32)
		minor, e4 := strconv.ParseUint(string(dev[1]), 16, 32)
		ino, e5 := strconv.ParseUint(string(f[4]), 10, 64)
		if e1 != nil || e2 != nil || e3 != nil || e4 != nil || e5 != nil || ino == 0 {
			continue
		}
		out = append(out, mapping{start: uintptr(start), end: uintptr(end), id: fileID{dev: mkdev(major, minor), ino: ino}})
	}
	return out
}

// mkdev encodes a device number as stat reports it (glibc's makedev).
func mkdev(major, minor uint64) uint64 {
	return (major&0xfff)<<8 | (major&^0xfff)<<32 | minor&0xff | (minor&^0xff)<<12
}
