package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gopamBin is the gopam binary the tests run, built once by TestMain with
// CGO_ENABLED=0 as users build it.
var gopamBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gopam-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	gopamBin = filepath.Join(dir, "gopam")
	build := exec.Command("go", "build", "-o", gopamBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gopam with CGO_ENABLED=0: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// outcome is what one run of a program produced.
type outcome struct {
	stdout, stderr string
	status         int
}

func (o outcome) String() string {
	return fmt.Sprintf("exit status %d\n--- stdout:\n%s--- stderr:\n%s", o.status, o.stdout, o.stderr)
}

// cleanEnv is the test's environment without anything that would make
// libpam read another configuration: pam_wrapper is only ever preloaded into
// pamtester, explicitly.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LD_PRELOAD=") || strings.HasPrefix(kv, "PAM_WRAPPER") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runProgram runs a program with stdin as its standard input and a deadline,
// so that a hang fails the test instead of stalling it.
func runProgram(t *testing.T, env []string, stdin string, name string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within a minute", name, args)
	}
	o := outcome{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.status = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", name, err)
	}
	return o
}

// gopam runs the gopam binary.
func gopam(t *testing.T, stdin string, args ...string) outcome {
	t.Helper()
	o := runProgram(t, cleanEnv(), stdin, gopamBin, args...)
	noCrash(t, o)
	return o
}

// noCrash fails the test if the output shows a Go panic or stack trace.
func noCrash(t *testing.T, o outcome) {
	t.Helper()
	for _, s := range []string{"goroutine ", "panic", "runtime error"} {
		if strings.Contains(o.stdout+o.stderr, s) {
			t.Fatalf("gopam crashed (output contains %q):\n%v", s, o)
		}
	}
}
