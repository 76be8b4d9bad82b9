package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/gopam/pam"
)

// The demo stack, embedded so that `go run .` works without any setup.
//
//go:embed demo/weblogin.conf demo/check.sh
var demoFiles embed.FS

// demoService is the service name of the demo stack.
const demoService = "weblogin"

// The demo account that demo/check.sh accepts.
const (
	demoUser     = "demo"
	demoPassword = "gopam-demo"
)

// demoModules are the stock Linux-PAM modules the demo stack uses.
var demoModules = []string{"pam_echo.so", "pam_stress.so", "pam_exec.so", "pam_deny.so", "pam_permit.so"}

// findModuleDir returns the system's PAM module directory, checking that it
// holds every module the demo needs. Module paths in the stack are absolute,
// so nothing is looked up relative to /etc.
func findModuleDir() (string, error) {
	dir, err := pam.ModuleDir()
	if err != nil {
		return "", fmt.Errorf("%w; on Debian install package libpam-modules", err)
	}
	for _, m := range demoModules {
		if fi, err := os.Stat(filepath.Join(dir, m)); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s has no %s; on Debian install package libpam-modules", dir, m)
		}
	}
	return dir, nil
}

// writeDemoStack writes the demo stack into dir: the service file
// dir/pam.d/weblogin and the password check it runs. It returns the
// configuration directory to use as pam.Config.ConfDir.
func writeDemoStack(dir string) (confDir string, err error) {
	modDir, err := findModuleDir()
	if err != nil {
		return "", err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	confDir = filepath.Join(dir, "pam.d")
	check := filepath.Join(dir, "check.sh")
	// PAM splits configuration lines at blanks.
	if strings.ContainsAny(modDir+check, " \t\n") {
		return "", errors.New("the demo stack's directory must not contain blanks: " + dir)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", err
	}
	script, err := demoFiles.ReadFile("demo/check.sh")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(check, script, 0o755); err != nil {
		return "", err
	}
	conf, err := demoFiles.ReadFile("demo/weblogin.conf")
	if err != nil {
		return "", err
	}
	tmpl, err := template.New("weblogin.conf").Parse(string(conf))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct{ ModDir, Check string }{modDir, check}); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(confDir, demoService), b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return confDir, nil
}
