package pam_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

func TestModuleDir(t *testing.T) {
	got, err := pam.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got, "pam_permit.so")); err != nil {
		t.Fatalf("ModuleDir() = %s, which has no pam_permit.so: %v", got, err)
	}
	// The test kit finds the same directory on its own.
	want, err := pamtest.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := filepath.EvalSymlinks(got)
	b, _ := filepath.EvalSymlinks(want)
	if a != b {
		t.Errorf("ModuleDir() = %s, pamtest.ModuleDir() = %s", got, want)
	}
}
