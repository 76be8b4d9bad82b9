package pam

import (
	"slices"

	"github.com/gopam/pam/internal/libpam"
)

// lib returns the loaded libpam, or an error wrapping ErrNotSupported that
// says why it could not be loaded.
func lib() (*libpam.Lib, error) {
	l, err := libpam.Load()
	if err != nil {
		return nil, notSupported(err.Error())
	}
	return l, nil
}

// Implementation returns the name of the PAM implementation loaded at run
// time: "Linux-PAM", "OpenPAM", or "unknown" (also when libpam cannot be
// loaded, which the first PAM call reports as ErrNotSupported).
func Implementation() string {
	l, err := lib()
	if err != nil {
		return libpam.ImplUnknown.String()
	}
	return l.Impl.String()
}

// The extensions that Extensions can report.
const (
	ExtFailDelay    = string(libpam.FeatureFailDelay)    // pam_fail_delay and the PAM_FAIL_DELAY item (Linux-PAM)
	ExtUnsetenv     = string(libpam.FeatureUnsetenv)     // variables can be removed from the PAM environment
	ExtSetenv       = string(libpam.FeatureSetenv)       // pam_setenv (OpenPAM)
	ExtConfDir      = string(libpam.FeatureConfDir)      // Config.ConfDir: pam_start_confdir (Linux-PAM 1.4+) or OpenPAM's path form of the service name
	ExtBinaryPrompt = string(libpam.FeatureBinaryPrompt) // the BinaryPrompt message style (Linux-PAM)
	ExtXAuthData    = string(libpam.FeatureXAuthData)    // the XDisplay, XAuthData and AuthTokType items (Linux-PAM)
	ExtConvAgain    = string(libpam.FeatureConvAgain)    // ErrConvAgain and ErrIncomplete (Linux-PAM)
)

// Extensions lists, sorted, the extensions of the loaded PAM implementation
// beyond the common API, detected at run time. It is empty when libpam cannot
// be loaded.
func Extensions() []string {
	l, err := lib()
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range l.Features() {
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}

// HasExtension reports whether Extensions includes name.
func HasExtension(name string) bool {
	return slices.Contains(Extensions(), name)
}
