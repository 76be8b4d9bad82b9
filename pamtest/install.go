package pamtest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/gopam/pam"
)

// MissingError reports that something the kit needs is not installed on
// this machine: a PAM module, a program or a C header. It matches
// fs.ErrNotExist with errors.Is, so a test that can live without the thing
// can skip:
//
//	if _, err := pamtest.ModulePath("pam_matrix.so"); errors.Is(err, fs.ErrNotExist) {
//		t.Skip(err)
//	}
type MissingError struct {
	// What names the missing thing, for example "module pam_matrix.so" or
	// "program db5.3_load".
	What string
	// Package is the Debian package that ships it, or "" if the kit knows
	// none.
	Package string
	// Searched lists the places that were looked at, if any.
	Searched []string
}

// Error says what is missing, where it was looked for and which Debian
// package to install.
func (e *MissingError) Error() string {
	var b strings.Builder
	b.WriteString("pamtest: ")
	b.WriteString(e.What)
	b.WriteString(" not found")
	if len(e.Searched) > 0 {
		b.WriteString(" (looked in ")
		b.WriteString(strings.Join(e.Searched, ", "))
		b.WriteString(")")
	}
	if e.Package != "" {
		b.WriteString("; on Debian install package ")
		b.WriteString(e.Package)
	}
	return b.String()
}

// Is reports whether target is fs.ErrNotExist, so that callers can test for
// a missing installation without naming this type.
func (e *MissingError) Is(target error) bool { return target == fs.ErrNotExist }

// wrapperModules are the modules that cwrap's pam_wrapper ships; Debian puts
// them in package libpam-wrapper, outside the system module directory.
var wrapperModules = map[string]bool{
	"pam_chatty.so":    true,
	"pam_get_items.so": true,
	"pam_matrix.so":    true,
	"pam_set_items.so": true,
}

// linuxPAMModules are the modules that Linux-PAM 1.5 builds; Debian ships
// them in package libpam-modules.
var linuxPAMModules = map[string]bool{
	"pam_access.so": true, "pam_debug.so": true, "pam_deny.so": true,
	"pam_echo.so": true, "pam_env.so": true, "pam_exec.so": true,
	"pam_faildelay.so": true, "pam_faillock.so": true, "pam_filter.so": true,
	"pam_ftp.so": true, "pam_group.so": true, "pam_issue.so": true,
	"pam_keyinit.so": true, "pam_lastlog.so": true, "pam_limits.so": true,
	"pam_listfile.so": true, "pam_localuser.so": true, "pam_loginuid.so": true,
	"pam_mail.so": true, "pam_mkhomedir.so": true, "pam_motd.so": true,
	"pam_namespace.so": true, "pam_nologin.so": true, "pam_permit.so": true,
	"pam_pwhistory.so": true, "pam_rhosts.so": true, "pam_rootok.so": true,
	"pam_securetty.so": true, "pam_selinux.so": true, "pam_sepermit.so": true,
	"pam_setquota.so": true, "pam_shells.so": true, "pam_stress.so": true,
	"pam_succeed_if.so": true, "pam_time.so": true, "pam_timestamp.so": true,
	"pam_tty_audit.so": true, "pam_umask.so": true, "pam_unix.so": true,
	"pam_userdb.so": true, "pam_usertype.so": true, "pam_warn.so": true,
	"pam_wheel.so": true, "pam_xauth.so": true,
}

// debianPackage returns the Debian package that ships the module file name,
// or "" if the kit does not know it.
func debianPackage(module string) string {
	switch {
	case wrapperModules[module]:
		return "libpam-wrapper"
	case linuxPAMModules[module]:
		return "libpam-modules"
	case module == "pam_cap.so":
		return "libpam-cap"
	case module == "pam_systemd.so":
		return "libpam-systemd"
	}
	return ""
}

// multiarchTriplets returns the Debian multiarch triplets that libraries of
// the running architecture may be installed under.
func multiarchTriplets() []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	switch runtime.GOARCH {
	case "amd64":
		return []string{"x86_64-linux-gnu"}
	case "386":
		return []string{"i386-linux-gnu"}
	case "arm64":
		return []string{"aarch64-linux-gnu"}
	case "arm":
		return []string{"arm-linux-gnueabihf", "arm-linux-gnueabi"}
	case "ppc64le":
		return []string{"powerpc64le-linux-gnu"}
	case "ppc64":
		return []string{"powerpc64-linux-gnu"}
	case "s390x":
		return []string{"s390x-linux-gnu"}
	case "riscv64":
		return []string{"riscv64-linux-gnu"}
	case "mips64le":
		return []string{"mips64el-linux-gnuabi64"}
	case "mipsle":
		return []string{"mipsel-linux-gnu"}
	case "loong64":
		return []string{"loongarch64-linux-gnu"}
	}
	return nil
}

// wrapperDirCandidates lists, in probing order, the directories that may
// hold the modules of cwrap's pam_wrapper.
func wrapperDirCandidates() []string {
	var dirs []string
	for _, t := range multiarchTriplets() {
		dirs = append(dirs, "/usr/lib/"+t+"/pam_wrapper")
	}
	return append(dirs,
		"/usr/lib64/pam_wrapper",
		"/usr/lib/pam_wrapper",
		"/usr/local/lib64/pam_wrapper",
		"/usr/local/lib/pam_wrapper",
	)
}

// wrapperLibCandidates lists, in probing order, the paths where cwrap's
// preloadable libpam_wrapper.so may be installed.
func wrapperLibCandidates() []string {
	var paths []string
	for _, t := range multiarchTriplets() {
		paths = append(paths, "/usr/lib/"+t+"/libpam_wrapper.so", "/lib/"+t+"/libpam_wrapper.so")
	}
	return append(paths,
		"/usr/lib64/libpam_wrapper.so",
		"/usr/lib/libpam_wrapper.so",
		"/usr/local/lib64/libpam_wrapper.so",
		"/usr/local/lib/libpam_wrapper.so",
	)
}

// isFile reports whether path names an existing regular file, following
// symbolic links.
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// ModuleDirEnv is the environment variable that, when set to a directory,
// overrides the probing of ModuleDir. It is meant for systems whose module
// directory the kit does not know.
const ModuleDirEnv = "PAMTEST_MODULE_DIR"

var moduleDir = sync.OnceValues(func() (string, error) {
	return probeModuleDir(os.Getenv(ModuleDirEnv))
})

// probeModuleDir finds the module directory as ModuleDir documents, with
// override standing for the value of ModuleDirEnv.
func probeModuleDir(override string) (string, error) {
	if override != "" {
		if !isFile(filepath.Join(override, "pam_permit.so")) {
			return "", &MissingError{
				What:     "module pam_permit.so (" + ModuleDirEnv + " is set)",
				Package:  "libpam-modules",
				Searched: []string{override},
			}
		}
		return override, nil
	}
	dir, err := pam.ModuleDir()
	if err != nil {
		return "", &MissingError{
			What:     "PAM module directory with pam_permit.so (" + err.Error() + ")",
			Package:  "libpam-modules",
			Searched: []string{"beside libpam", "the usual module directories"},
		}
	}
	return dir, nil
}

// ModuleDir returns the directory that holds the system's PAM modules, as
// pam.ModuleDir finds it, or the directory named by PAMTEST_MODULE_DIR if
// that is set. The answer is computed once per process. If no directory
// qualifies, the error is a *MissingError.
func ModuleDir() (string, error) {
	return moduleDir()
}

// ModulePath returns the absolute path of the PAM module with the given file
// name (for example "pam_permit.so"), looking first in ModuleDir and then in
// the module directories of cwrap's pam_wrapper. The name must not contain
// a slash. If the module is not installed, the error is a *MissingError that
// names the Debian package shipping it, when the kit knows one.
func ModulePath(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("pamtest: module name %q must be a plain file name", name)
	}
	var searched []string
	if d, err := ModuleDir(); err == nil {
		p := filepath.Join(d, name)
		if isFile(p) {
			return p, nil
		}
		searched = append(searched, d)
	}
	for _, d := range wrapperDirCandidates() {
		p := filepath.Join(d, name)
		if isFile(p) {
			return p, nil
		}
		if isDir(d) {
			searched = append(searched, d)
		}
	}
	if len(searched) == 0 {
		searched = append([]string{"the system module directory"}, wrapperDirCandidates()...)
	}
	return "", &MissingError{What: "module " + name, Package: debianPackage(name), Searched: searched}
}

// isDir reports whether path names an existing directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// WrapperLibrary returns the absolute path of cwrap's preloadable
// libpam_wrapper.so. If it is not installed, the error is a *MissingError
// naming Debian package libpam-wrapper.
func WrapperLibrary() (string, error) {
	candidates := wrapperLibCandidates()
	for _, p := range candidates {
		if isFile(p) {
			return p, nil
		}
	}
	return "", &MissingError{What: "library libpam_wrapper.so", Package: "libpam-wrapper", Searched: candidates}
}

// lookProgram finds an executable in PATH like exec.LookPath, but reports
// absence as a *MissingError naming the Debian package pkg.
func lookProgram(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &MissingError{What: "program " + name + " (in PATH)", Package: pkg}
	}
	return p, nil
}
