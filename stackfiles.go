package pam

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gopam/pam/internal/esc"
)

// systemConfDir is where libpam reads stacks when Config.ConfDir is empty.
const systemConfDir = "/etc/pam.d"

// unreadableStack explains a failed pam_start whose stack files cannot be
// read: it returns an error naming each file libpam would have read for
// service (confDir/service, then confDir/other) and why it cannot, or nil
// when one of them can be read and the failure lies elsewhere. The files are
// those of Linux-PAM: the service name cut to its last path element and
// lowercased, as libpam does.
func unreadableStack(confDir, service string) error {
	dir := confDir
	if dir == "" {
		dir = systemConfDir
	}
	name := strings.ToLower(service)
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	var msgs []string
	var errs []any
	for _, n := range []string{name, "other"} {
		p := filepath.Join(dir, n)
		f, err := os.Open(p)
		if err == nil {
			f.Close()
			return nil
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		msgs = append(msgs, esc.Quote(p)+": %w")
		errs = append(errs, err)
	}
	return fmt.Errorf("the stack cannot be read: "+strings.Join(msgs, "; "), errs...)
}
