package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/gopam/pam"
)

// The demo stack, embedded so that `go run .` works without any setup.
//
//go:embed demo
var demoFiles embed.FS

// demoService is the service name of the demo stack, and the default
// service with -confdir.
const demoService = "sshgate"

// The demo account that demo/check.sh accepts.
const (
	demoUser     = "demo"
	demoPassword = "gopam-demo"
)

// writeDemoStack writes the demo stack into dir: the service file
// dir/pam.d/sshgate and the files its modules read. It returns the
// configuration directory for pam.Config.ConfDir. The stack names Linux-PAM's
// stock modules (Debian package libpam-modules) by absolute path.
func writeDemoStack(dir string) (confDir string, err error) {
	modDir, err := pam.ModuleDir()
	if err != nil {
		return "", fmt.Errorf("%w; on Debian install package libpam-modules", err)
	}
	for _, m := range []string{"pam_echo.so", "pam_exec.so", "pam_deny.so", "pam_permit.so", "pam_env.so"} {
		if _, err := os.Stat(filepath.Join(modDir, m)); err != nil {
			return "", fmt.Errorf("the demo stack needs %s: on Debian install package libpam-modules", m)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", err
	}
	if strings.ContainsAny(modDir+dir, " \t\n") { // PAM splits lines at blanks
		return "", fmt.Errorf("the demo stack's directory must not contain blanks: %q", dir)
	}
	confDir = filepath.Join(dir, "pam.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		return "", err
	}
	conf, err := demoFiles.ReadFile("demo/sshgate.conf")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	tmpl := template.Must(template.New("sshgate.conf").Parse(string(conf)))
	if err := tmpl.Execute(&b, struct{ ModDir, Dir string }{modDir, dir}); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(confDir, demoService), b.Bytes(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		return "", err
	}
	for name, mode := range map[string]os.FileMode{"check.sh": 0o755, "env.conf": 0o644} {
		data, err := demoFiles.ReadFile("demo/" + name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return "", err
		}
	}
	return confDir, nil
}
