package libpam

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// EnvModuleCache names the environment variable that turns the module cache
// off for a deployment: "off", "0", "false" or "no" (read once, when libpam
// is loaded).
const EnvModuleCache = "GOPAM_MODULE_CACHE"

// DefaultModuleCacheLimit bounds how many module objects the cache holds. A
// stack has a handful; past the limit the oldest entry is released.
const DefaultModuleCacheLimit = 64

// The module cache. libpam dlopens every module of a stack in pam_start and
// dlcloses it in pam_end, so that each transaction maps, relocates and unmaps
// the same code again. After a pam_start that loaded something new, the cache
// takes one extra reference (dlopen with RTLD_NOLOAD, which never loads) on
// each PAM module object now in the process: libpam's own dlopen and dlclose
// then only move reference counts. Before each pam_start, a cached module
// whose file changed on disk (device, inode, size, mtime) is released, so
// that the transaction after the last one that still uses the old code loads
// the new file. All of it is in modcache_linux.go; elsewhere the cache is
// never active.
type modCache struct {
	// on is set under mu and read without it by the look before a start;
	// scanning is set, under mu, while a start drains the watch's events
	// and releases what changed, so that a start that finds no event
	// pending then still waits for the releases.
	on       atomic.Bool
	scanning atomic.Bool
	mu       sync.Mutex
	limit    int
	entries  []*modEntry // oldest first
	byName   map[string]*modEntry
	// stale maps the name of a module released because its file changed to
	// the identity of the mapping of the old object, which may still be
	// loaded (a transaction in progress uses it): the cache must not take
	// it again under the same name.
	stale    map[string]fileID
	lastAdds uint64 // the loader's count of objects added, at the last scan
	sys      modSys // the system part: loader walk, file watch
}

// modEntry is one cached module object.
type modEntry struct {
	name   string // the name libpam loaded it by
	handle uintptr
	file   fileID // the file at name when it was cached
	mapped fileID // the file the object is mapped from (device and inode)
}

// fileID identifies a file: device, inode, size and modification time. For a
// mapping only dev and ino are known.
type fileID struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
}

func (a fileID) sameFile(b fileID) bool { return a.dev == b.dev && a.ino == b.ino }

var cache = modCache{limit: DefaultModuleCacheLimit, byName: map[string]*modEntry{}, stale: map[string]fileID{}}

// cacheWantedByEnv reports whether the environment leaves the cache on.
func cacheWantedByEnv() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvModuleCache))) {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// SetModuleCache turns the module cache on or off for the process. Off
// releases every reference it holds. It reports whether the cache is active
// afterwards: it cannot be where the system offers no way to find the objects
// libpam loaded.
func (l *Lib) SetModuleCache(on bool) bool {
	c := &cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if on && !c.on.Load() {
		c.on.Store(c.sys.init(l))
		c.lastAdds = 0
	} else if !on && c.on.Load() {
		c.releaseAllLocked()
		c.on.Store(false)
	}
	return c.on.Load()
}

// ModuleCacheActive reports whether the module cache is on.
func ModuleCacheActive() bool { return cache.on.Load() }

// CachedModules returns the names of the cached module objects, oldest first.
func CachedModules() []string {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	out := make([]string, len(cache.entries))
	for i, e := range cache.entries {
		out[i] = e.name
	}
	return out
}

// SetModuleCacheLimit changes the bound (n < 1 means the default) and
// releases the oldest entries past it. Tests use it.
func SetModuleCacheLimit(n int) {
	if n < 1 {
		n = DefaultModuleCacheLimit
	}
	c := &cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = n
	for len(c.entries) > c.limit {
		c.releaseLocked(c.entries[0])
	}
}

// BeforeStart releases the cached modules whose files changed, so that the
// pam_start about to run loads them afresh. Call it before Start on a
// goroutine not locked to its thread: it may wait for the cache's mutex, and
// a locked goroutine that waits holds its OS thread, so that a burst of
// starts would take a thread each.
func BeforeStart() { cache.beforeStart() }

// TestHookScanBusy, when set by a test, makes afterStart act as when another
// start holds the cache: it skips the scan.
var TestHookScanBusy atomic.Bool

// TestHookAfterDrain, when set (by a test, before the starts it watches), runs
// in beforeStart after the watch's events were read and before the changed
// modules are released.
var TestHookAfterDrain func()

func (c *modCache) beforeStart() {
	// The common case, nothing changed, takes no lock: the watch's pending
	// events are counted, not read, so that every start that comes while a
	// change is pending sees it and waits below until it is dealt with; one
	// that comes after another start drained them, before that start
	// released what changed, sees scanning (set before the drain).
	if !c.on.Load() || !c.sys.pending() && !c.scanning.Load() {
		return
	}
	c.mu.Lock()
	c.scanning.Store(true)
	if c.on.Load() && c.sys.changed() {
		if TestHookAfterDrain != nil {
			TestHookAfterDrain()
		}
		for _, e := range append([]*modEntry(nil), c.entries...) {
			if id, ok := statFile(e.name); !ok || id != e.file {
				c.stale[e.name] = e.mapped
				c.releaseLocked(e)
			}
		}
		if len(c.stale) > 4*c.limit {
			clear(c.stale)
		}
	}
	c.scanning.Store(false)
	c.mu.Unlock()
}

// afterStart takes a reference on the modules a successful pam_start loaded,
// if the loader added any object since the last look. It runs on the locked
// thread of the start, so it never waits: when another start holds the
// cache's mutex it does nothing, and since the loader's count then still
// differs from the one the cache last saw, a later start looks.
func (c *modCache) afterStart(l *Lib) {
	if TestHookScanBusy.Load() || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if !c.on.Load() {
		return
	}
	adds, ok := c.sys.adds()
	if !ok || adds == c.lastAdds {
		return
	}
	c.lastAdds = adds
	objs := c.sys.objects()
	var maps []mapping
	for _, o := range objs {
		if o.name == "" || c.byName[o.name] != nil || !strings.Contains(o.name, "/") {
			continue
		}
		h := c.sys.noload(o.name)
		if h == 0 {
			continue // unloaded meanwhile
		}
		keep := false
		if c.sys.isModule(h, o.name) {
			if maps == nil {
				maps = readMaps()
			}
			mapped, mok := mappingAt(maps, o.addr)
			file, fok := statFile(o.name)
			old, wasStale := c.stale[o.name]
			switch {
			case !mok || !fok:
			case wasStale && mapped.sameFile(old):
				// The old object, still used by a transaction in
				// progress: not again.
			case mapped.dev == file.dev && mapped.ino != file.ino:
				// The object is not the file now at its name: it was
				// replaced after a start loaded it and before any scan
				// cached it (a scan skipped by afterStart's TryLock), so
				// caching it now would keep the old code under the new
				// file's identity. (Where the loader's mappings and stat
				// name different devices, as on overlayfs, this cannot be
				// told; the window is then the time until a scan.)
			default:
				delete(c.stale, o.name)
				if len(c.entries) >= c.limit {
					c.releaseLocked(c.entries[0])
				}
				e := &modEntry{name: o.name, handle: h, file: file, mapped: mapped}
				c.entries = append(c.entries, e)
				c.byName[o.name] = e
				c.sys.watch(o.name)
				keep = true
			}
		}
		if !keep {
			c.sys.dlclose(h)
		}
	}
}

func (c *modCache) releaseLocked(e *modEntry) {
	for i, x := range c.entries {
		if x == e {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			break
		}
	}
	delete(c.byName, e.name)
	c.sys.dlclose(e.handle)
}

func (c *modCache) releaseAllLocked() {
	for len(c.entries) > 0 {
		c.releaseLocked(c.entries[0])
	}
	clear(c.stale)
}

// object is one loaded object as the loader lists it.
type object struct {
	name string
	addr uintptr // an address inside its first mapping (its program headers)
}

// mapping is one line of /proc/self/maps with a file behind it.
type mapping struct {
	start, end uintptr
	id         fileID
}

// mappingAt returns the file mapped at addr.
func mappingAt(maps []mapping, addr uintptr) (fileID, bool) {
	for _, m := range maps {
		if m.start <= addr && addr < m.end {
			return m.id, true
		}
	}
	return fileID{}, false
}

// LoaderCounts returns the loader's counts of objects added to and removed
// from the process since it began (dl_iterate_phdr's dlpi_adds and
// dlpi_subs), for tests; ok is false where they are unknown.
func (l *Lib) LoaderCounts() (adds, subs uint64, ok bool) {
	c := &cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sys.init(l) {
		return 0, 0, false
	}
	return c.sys.counts()
}

// HoldCacheForTest takes the cache's mutex until the returned function is
// called, for a test that shows what starts do while another holds it.
func HoldCacheForTest() (release func()) {
	cache.mu.Lock()
	return cache.mu.Unlock
}
