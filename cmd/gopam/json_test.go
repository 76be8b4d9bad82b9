package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// decodeReport parses gopam's --json output strictly: it must be one JSON
// document with exactly the fields of report.
func decodeReport(t *testing.T, o outcome) (report, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	dec.DisallowUnknownFields()
	var r report
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%v", err, o)
	}
	if dec.More() {
		t.Fatalf("--json printed more than one document:\n%v", o)
	}
	var generic map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &generic); err != nil {
		t.Fatalf("--json output is not valid JSON: %v", err)
	}
	return r, generic
}

func TestJSONFailedOperation(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_userdb")
	s := pamtest.New(t)
	db := s.UserDB("users", map[string]string{"alice": "right-password"})
	svc := s.Service("login", "auth required pam_userdb.so db="+db+" crypt=none", "account required pam_permit.so")
	o := gopam(t, "", "--json", "--confdir", s.Dir(), "--answer", "wrong-password-xyzzy", svc, "alice", "authenticate", "acct_mgmt")
	if o.status != 1 {
		t.Fatalf("want exit status 1:\n%v", o)
	}
	if strings.Contains(o.stdout+o.stderr, "wrong-password-xyzzy") {
		t.Errorf("the echo-off answer appears in the output:\n%v", o)
	}
	r, _ := decodeReport(t, o)
	if r.OK || r.ExitStatus != 1 || r.Mode != "pamtester" || r.Service != svc || r.User != "alice" || r.ConfDir != s.Dir() || r.Format != 1 {
		t.Errorf("report header: %+v", r)
	}
	if r.Implementation != pam.Implementation() {
		t.Errorf("implementation %q, want %q", r.Implementation, pam.Implementation())
	}
	if !r.Start.OK || r.Start.Code != "PAM_SUCCESS" {
		t.Errorf("start: %+v", r.Start)
	}
	if len(r.Operations) != 1 {
		t.Fatalf("want only the failed authenticate in operations, got %+v", r.Operations)
	}
	op := r.Operations[0]
	errno, _ := pam.ErrAuth.Errno()
	if op.Op != "authenticate" || op.OK || op.Code != "PAM_AUTH_ERR" || op.Errno != errno || op.Errno == 0 {
		t.Errorf("operation: %+v, want authenticate failing with PAM_AUTH_ERR (%d)", op, errno)
	}
	if op.Outcome != "credentials" || r.Start.Outcome != "ok" {
		t.Errorf("outcomes: start %q, operation %q; want ok and credentials", r.Start.Outcome, op.Outcome)
	}
	if op.Strerror != "Authentication failure" || op.Message != op.Strerror {
		t.Errorf("strerror %q, message %q: want libpam's \"Authentication failure\"", op.Strerror, op.Message)
	}
	if !strings.Contains(op.Error, "authenticate alice via "+svc) {
		t.Errorf("error %q does not name the operation, user and service", op.Error)
	}
	if op.DurationNS <= 0 || op.Duration == "" {
		t.Errorf("duration not reported: %+v", op.result)
	}
	if len(op.Conversation) != 1 {
		t.Fatalf("want one prompt in the conversation, got %+v", op.Conversation)
	}
	ev := op.Conversation[0]
	if ev.Style != "PAM_PROMPT_ECHO_OFF" || !ev.Prompt || ev.Answer == nil || *ev.Answer != "***" || ev.Source != "answer" || ev.Text == "" {
		t.Errorf("prompt event: %+v", ev)
	}
	if r.Error != "Authentication failure" {
		t.Errorf("report error %q", r.Error)
	}
}

// secretsStack prompts for a user (echo on) and a password (echo off),
// exports the items into the PAM environment during authentication (where
// the gopam library scrubs PAM_AUTHTOK) and sets a variable whose name says
// it is a password in the session.
func secretsStack(t *testing.T) (*pamtest.Stack, string) {
	s := pamtest.New(t)
	conf := s.File("env.conf", "VISIBLE DEFAULT=yes\nDB_PASSWORD DEFAULT=topsecret-env\n")
	svc := s.Service("secrets",
		"auth required pam_stress.so",
		"auth required pam_get_items.so",
		"account required pam_permit.so",
		"session required pam_env.so readenv=0 conffile="+conf,
	)
	return s, svc
}

func TestJSONMasksSecrets(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_stress")
	s, svc := secretsStack(t)
	o := gopam(t, "", "--json", "--confdir", s.Dir(), "--answer", "bob", "--answer", "pw-secret-1234",
		"-E", "API_PASSWD=topsecret-cli", "-E", "PLAIN=shown", svc, "", "authenticate", "open_session")
	if o.status != 0 {
		t.Fatalf("want success:\n%v", o)
	}
	for _, secret := range []string{"pw-secret-1234", "topsecret-env", "topsecret-cli"} {
		if strings.Contains(o.stdout+o.stderr, secret) {
			t.Errorf("secret %q appears in the output:\n%v", secret, o)
		}
	}
	r, _ := decodeReport(t, o)
	wantSetup := []setup{{Action: "putenv", Name: "API_PASSWD", Value: "***"}, {Action: "putenv", Name: "PLAIN", Value: "shown"}}
	if len(r.Setup) != len(wantSetup) {
		t.Fatalf("setup: %+v", r.Setup)
	}
	for i, w := range wantSetup {
		if g := r.Setup[i]; g.Action != w.Action || g.Name != w.Name || g.Value != w.Value || !g.OK {
			t.Errorf("setup[%d] = %+v, want %+v", i, g, w)
		}
	}
	conv := r.Operations[0].Conversation
	if len(conv) != 2 || conv[0].Style != "PAM_PROMPT_ECHO_ON" || conv[0].Answer == nil || *conv[0].Answer != "bob" ||
		conv[1].Style != "PAM_PROMPT_ECHO_OFF" || conv[1].Answer == nil || *conv[1].Answer != "***" {
		t.Errorf("conversation: want the user name shown and the password masked, got %+v", conv)
	}
	env := map[string]envVar{}
	for _, v := range r.Env {
		env[v.Name] = v
	}
	if v := env["VISIBLE"]; v.Value != "yes" || v.Masked {
		t.Errorf("VISIBLE: %+v", v)
	}
	if v := env["PLAIN"]; v.Value != "shown" || v.Masked {
		t.Errorf("PLAIN: %+v", v)
	}
	// pam_env set it in open_session, and the scrub after that call removed
	// it: session modules' secrets are scrubbed too.
	if v, ok := env["DB_PASSWORD"]; ok {
		t.Errorf("DB_PASSWORD should have been scrubbed after open_session, found %+v", v)
	}
	if v, ok := env["PAM_USER"]; !ok || v.Value != "bob" {
		t.Errorf("pam_get_items did not export PAM_USER=bob (env %+v)", r.Env)
	}
	for _, name := range []string{"PAM_AUTHTOK", "API_PASSWD"} {
		if v, ok := env[name]; ok {
			t.Errorf("%s should have been scrubbed after authenticate, found %+v", name, v)
		}
	}

	// --env prints the same environment, masked, as NAME=value lines.
	o = gopam(t, "", "--env", "--confdir", s.Dir(), "--answer", "bob", "--answer", "pw-secret-1234", svc, "", "authenticate", "open_session")
	if o.status != 0 {
		t.Fatalf("want success:\n%v", o)
	}
	for _, line := range []string{"VISIBLE=yes", "PAM_USER=bob"} {
		if !hasLine(o.stdout, line) {
			t.Errorf("--env output lacks %q:\n%v", line, o)
		}
	}
	if strings.Contains(o.stdout, "DB_PASSWORD") {
		t.Errorf("--env output shows the scrubbed DB_PASSWORD:\n%v", o)
	}
	if strings.Contains(o.stdout+o.stderr, "pw-secret-1234") || strings.Contains(o.stdout+o.stderr, "topsecret-env") {
		t.Errorf("a secret appears in the output:\n%v", o)
	}
	if !strings.Contains(o.stderr, "username: bob") {
		t.Errorf("the echo-on prompt and its answer should be shown:\n%v", o)
	}
}

func TestJSONStartFailure(t *testing.T) {
	s := pamtest.New(t)
	o := gopam(t, "", "--json", "--confdir", s.Dir(), "nosuchservice", "alice", "authenticate")
	if o.status != 1 {
		t.Fatalf("want exit status 1:\n%v", o)
	}
	r, generic := decodeReport(t, o)
	if r.Start.OK || r.Start.Code == "" || r.Start.Code == "PAM_SUCCESS" || r.Start.Errno == 0 || r.Start.Strerror == "" {
		t.Errorf("start: %+v", r.Start)
	}
	if len(r.Operations) != 0 || generic["env"] != nil || r.Error != "Initialization failure" || r.Hint == "" {
		t.Errorf("report: %+v", r)
	}
}

func TestTimeout(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_exec")
	s := pamtest.New(t)
	// The module sleeps 30 s: a gopam that honours --timeout ends a hundred
	// times sooner, on any machine.
	svc := s.Service("slow", "auth required pam_exec.so /bin/sleep 30", "account required pam_permit.so")
	start := time.Now()
	o := gopam(t, "", "--json", "--timeout", "300ms", "--confdir", s.Dir(), svc, "alice", "authenticate", "acct_mgmt")
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("gopam took %v with --timeout 300ms", d)
	}
	if o.status != 1 {
		t.Fatalf("want exit status 1:\n%v", o)
	}
	r, generic := decodeReport(t, o)
	if len(r.Operations) != 1 || r.Operations[0].OK || r.Operations[0].Code != "" || !strings.Contains(r.Operations[0].Error, "deadline") {
		t.Errorf("operations: %+v", r.Operations)
	}
	if !strings.Contains(r.Error, "timed out") || generic["env"] != nil {
		t.Errorf("report: %+v", r)
	}

	o = gopam(t, "", "--timeout", "300ms", "--confdir", s.Dir(), svc, "alice", "authenticate")
	if o.status != 1 || !hasLine(o.stderr, "gopam: timed out (--timeout 300ms)") {
		t.Errorf("want a timeout line:\n%v", o)
	}
}

// TestJSONFieldsDocumented checks that every field the JSON output has is
// described under JSON OUTPUT in --help, and that every field described
// there is in the output.
func TestJSONFieldsDocumented(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_stress")
	help := gopam(t, "", "--help")
	if help.status != 0 {
		t.Fatalf("--help: %v", help)
	}
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPERATIONS", "OPTIONS", "JSON OUTPUT", "EXIT STATUS", "EXAMPLES"} {
		if !hasLine(help.stdout, section) {
			t.Errorf("--help has no %s section", section)
		}
	}
	_, after, _ := strings.Cut(help.stdout, "\nJSON OUTPUT\n")
	jsonSection, _, _ := strings.Cut(after, "\nEXIT STATUS\n")
	fieldRE := regexp.MustCompile(`(?m)^ +([a-z_]+) +(string|number|boolean|array|object)\b`)
	documented := map[string]bool{}
	for _, m := range fieldRE.FindAllStringSubmatch(jsonSection, -1) {
		documented[m[1]] = true
	}
	if len(documented) < 20 {
		t.Fatalf("found only %d documented fields in JSON OUTPUT:\n%s", len(documented), jsonSection)
	}

	// Reports that between them have every field: a failure with a
	// conversation and setup, and a success with an environment.
	s, svc := secretsStack(t)
	seen := map[string]bool{}
	for _, args := range [][]string{
		{"--json", "--confdir", s.Dir(), "-E", "A=b", "--answer", "bob", "--answer", "pw", svc, "", "authenticate", "open_session"},
		{"--json", "--confdir", s.Dir(), "-I", "tty=pts/1", "--answer", "bob", svc, "", "authenticate"},
	} {
		o := gopam(t, "", args...)
		_, generic := decodeReport(t, o)
		collectKeys(generic, seen)
	}
	var undocumented, unseen []string
	for k := range seen {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !seen[k] {
			unseen = append(unseen, k)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unseen)
	if len(undocumented) > 0 {
		t.Errorf("JSON fields missing from --help: %v", undocumented)
	}
	if len(unseen) > 0 {
		t.Errorf("fields documented in --help that the output lacks: %v", unseen)
	}
}

func collectKeys(v any, seen map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			seen[k] = true
			collectKeys(x, seen)
		}
	case []any:
		for _, x := range v {
			collectKeys(x, seen)
		}
	}
}

// TestJSONIsTheOnlyOutput checks that --json keeps standard output to the
// document even when modules talk.
func TestJSONIsTheOnlyOutput(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_echo")
	s := pamtest.New(t)
	svc := s.Service("chatty", "auth required pam_echo.so hello %u", "auth required pam_permit.so")
	o := gopam(t, "", "--json", "--confdir", s.Dir(), svc, "alice", "authenticate")
	if o.status != 0 {
		t.Fatalf("%v", o)
	}
	if !json.Valid([]byte(o.stdout)) || o.stderr != "" {
		t.Errorf("want only JSON on stdout and nothing on stderr:\n%v", o)
	}
	r, _ := decodeReport(t, o)
	if c := r.Operations[0].Conversation; len(c) != 1 || c[0].Style != "PAM_TEXT_INFO" || c[0].Text != "hello alice" || c[0].Answer != nil {
		t.Errorf("conversation: %+v", c)
	}
	if !bytes.HasSuffix([]byte(o.stdout), []byte("}\n")) {
		t.Errorf("the document should end with a newline")
	}
}
