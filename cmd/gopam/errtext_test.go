package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorTextEscapedAndBounded is issue 8's acceptance 2 for the CLI: a
// user name holding a newline, an ANSI escape and 1 MiB of text gives one
// line of at most 1 KiB per message, in a PAM failure and in a usage error.
// The program runs in-process: Linux refuses an argument of 1 MiB to exec.
func TestErrorTextEscapedAndBounded(t *testing.T) {
	evil := "eve\n2026-12-01 root logged in OK\x1b[2J" + strings.Repeat("A", 1<<20)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deny"), []byte("auth required pam_deny.so\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		status int
	}{
		{"authenticate", []string{"-v", "--confdir", dir, "deny", evil, "authenticate"}, exitFailure},
		{"unknown item", []string{"-I", evil + "=x", "deny", "alice", "authenticate"}, exitUsage},
		{"unknown operation", []string{"--confdir", dir, "deny", "alice", evil}, exitUsage},
		{"missing service", []string{"-v", "--confdir", t.TempDir(), "deny", evil, "authenticate"}, exitFailure},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(c.args, nil, &stdout, &stderr)
			if status != c.status {
				t.Fatalf("exit status %d, want %d\n%.2000s", status, c.status, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) == 0 || lines[0] == "" {
				t.Fatal("nothing on standard error")
			}
			for _, l := range lines {
				if len(l) >= 1024 || strings.ContainsAny(l, "\r\x1b") {
					t.Errorf("a message line is %d bytes or holds a control byte: %.300q", len(l), l)
				}
				if strings.Contains(l, "2026-12-01 root logged in OK") && !strings.Contains(l, `\n2026-12-01`) {
					t.Errorf("the forged line is not escaped: %.300q", l)
				}
				if strings.Count(strings.TrimPrefix(l, "gopam: "), "pam: ") > 1 {
					t.Errorf("the prefix repeats: %.300s", l)
				}
			}
			if strings.Count(stdout.String(), "\n") > 2 || stdout.Len() > 2048 {
				t.Errorf("standard output: %.300q", stdout.String())
			}
		})
	}
}
