package pam

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// ErrNoModuleDir is returned by ModuleDir when no directory holds the
// system's PAM modules.
var ErrNoModuleDir = errors.New("pam: cannot find the directory of the system's PAM modules (pam_permit.so)")

var moduleDir = sync.OnceValues(probeModuleDir)

// ModuleDir returns the directory that holds the system's PAM modules, for
// programs that write a private stack for Config.ConfDir: module paths in such
// a stack should be absolute (Debian, for one, resolves relative includes
// against /etc/pam.d even under a private confdir). It looks next to the
// loaded libpam first (Linux-PAM installs its modules in the security
// directory beside the library), then in the usual places; the first
// directory holding pam_permit.so wins. The answer is computed once.
func ModuleDir() (string, error) {
	return moduleDir()
}

func probeModuleDir() (string, error) {
	var dirs []string
	if l, err := lib(); err == nil {
		if f := l.File(); filepath.IsAbs(f) {
			dirs = append(dirs, filepath.Join(filepath.Dir(f), "security"), filepath.Join(filepath.Dir(f), "pam"))
		}
	}
	if t := debianTriplet(); t != "" {
		dirs = append(dirs, "/lib/"+t+"/security", "/usr/lib/"+t+"/security")
	}
	dirs = append(dirs, "/lib/security", "/usr/lib/security", "/usr/lib64/security", "/lib64/security",
		"/usr/lib/pam", // macOS
		"/usr/lib")     // FreeBSD keeps OpenPAM's modules with the libraries
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "pam_permit.so")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
		if fi, err := os.Stat(filepath.Join(d, "pam_permit.so.2")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
	}
	return "", ErrNoModuleDir
}

// debianTriplet returns the Debian multiarch triplet of the running
// architecture, or "".
func debianTriplet() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	return map[string]string{
		"amd64": "x86_64-linux-gnu", "386": "i386-linux-gnu", "arm64": "aarch64-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
		"riscv64": "riscv64-linux-gnu", "loong64": "loongarch64-linux-gnu",
	}[runtime.GOARCH]
}
