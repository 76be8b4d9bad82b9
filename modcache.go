package pam

import "github.com/gopam/pam/internal/libpam"

// The module cache.
//
// Linux-PAM and OpenPAM load every module of a stack when a transaction
// starts and unload it when it ends: each transaction maps, relocates and
// unmaps the same code again, which costs more than the rest of a short
// transaction. gopam therefore keeps loaded the modules that libpam loaded:
// after a Start that loaded something new, it takes one reference of its own
// on each PAM module object in the process (dlopen with RTLD_NOLOAD, which
// never loads anything), and libpam's own loading and unloading then only
// count references.
//
// What changes for modules: their static state lives as long as the process,
// as it already does whenever two transactions overlap, and their
// constructors and destructors run once, not once per transaction. That is
// safe for modules that keep per-transaction state in the handle (pam_set_data),
// as the PAM API requires of them, since concurrent transactions already share
// one loaded copy.
//
// Upgrades: before each Start, a cached module whose file changed on disk
// (device, inode, size or modification time: a package upgrade renames a new
// file over the old one) is released, so the first transaction that starts
// after the last one using the old code has ended loads the new file.
// Transactions still running keep the code they started with, as without
// the cache.
//
// The cache holds at most ModuleCacheLimit objects (the oldest is released
// past it). No Start waits for it while its OS thread is locked: the look for
// changed files comes before the thread is locked and takes no lock when no
// watched file changed, and a Start that finds another scanning the cache
// for new objects leaves the scan to a later Start. It is on by default
// where it can work (Linux, with glibc's loader, for Linux-PAM and OpenPAM
// alike); SetModuleCache(false) or the environment variable
// GOPAM_MODULE_CACHE=off turns it off.

// ModuleCacheLimit is the most module objects the module cache holds.
const ModuleCacheLimit = libpam.DefaultModuleCacheLimit

// EnvModuleCache names the environment variable that turns the module cache
// off when it is "off", "0", "false" or "no"; it is read when libpam is
// first loaded.
const EnvModuleCache = libpam.EnvModuleCache

// SetModuleCache turns the module cache on or off for the whole process and
// reports whether it is active afterwards. Off releases every reference the
// cache holds: modules no transaction uses are unloaded at once. It cannot be
// on where libpam cannot be loaded, or on systems other than Linux.
func SetModuleCache(on bool) bool {
	l, err := lib()
	if err != nil {
		return false
	}
	return l.SetModuleCache(on)
}

// ModuleCacheActive reports whether the module cache is on.
func ModuleCacheActive() bool {
	if _, err := lib(); err != nil {
		return false
	}
	return libpam.ModuleCacheActive()
}
