package pamtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
)

// HostKind names a real PAM application that RunHost drives.
type HostKind string

// The hosts RunHost knows. pamtester and python3-pam read the stack through
// cwrap's pam_wrapper (plain pam_start), the others through
// pam_start_confdir.
const (
	HostC         HostKind = "c"           // the kit's C host (Host)
	HostPamtester HostKind = "pamtester"   // Debian's pamtester
	HostPython    HostKind = "python3-pam" // Debian's python3-pam (module PAM)
	HostGopam     HostKind = "gopam"       // the gopam command, a Go program
)

// Hosts lists every HostKind.
var Hosts = []HostKind{HostC, HostPamtester, HostPython, HostGopam}

// Transaction is what RunHost runs: one PAM transaction of a host.
type Transaction struct {
	Service, User string
	// Answers answer the prompts in order.
	Answers []string
	// Ops are pamtester's operation names: authenticate, setcred,
	// acct_mgmt, open_session, close_session, chauthtok.
	Ops []string
}

// OpResult is the result of one operation.
type OpResult struct {
	Op   string
	Code pam.Code
}

// Outcome is what a host did.
type Outcome struct {
	Host HostKind
	// PID is the host's process id.
	PID int
	// Results are the operations that ran, in order. pamtester and gopam
	// stop at the first failure, as pamtester does; the C host and
	// python3-pam run every operation, so a later result shows that the
	// host survived an earlier failure.
	Results []OpResult
	// Env is the PAM environment after the operations; nil for pamtester,
	// which cannot show it.
	Env map[string]string
	// Status is the host's exit status: for pamtester and gopam, 0 when
	// every operation succeeded and 1 when one failed.
	Status int
	// Output is everything the host printed.
	Output string
}

// Code returns the result of the first run of op, and false when op did
// not run.
func (o Outcome) Code(op string) (pam.Code, bool) {
	for _, r := range o.Results {
		if r.Op == op {
			return r.Code, true
		}
	}
	return 0, false
}

// cOps maps pamtester's operation names to the C host's.
var cOps = map[string]string{
	"authenticate": "auth", "setcred": "setcred", "acct_mgmt": "acct",
	"open_session": "open_session", "close_session": "close_session", "chauthtok": "chauthtok",
}

// pythonHost is the python3-pam driver RunHost runs.
const pythonHost = `import os, sys, PAM
answers = [a for a in os.environ.get("PAMTEST_ANSWERS", "").split("\n")] if os.environ.get("PAMTEST_ANSWERS") else []
def conv(auth, queries, data):
    out = []
    for text, style in queries:
        if style in (PAM.PAM_PROMPT_ECHO_ON, PAM.PAM_PROMPT_ECHO_OFF):
            if not answers:
                raise PAM.error("no answer left", PAM.PAM_CONV_ERR)
            out.append((answers.pop(0), 0))
        else:
            print("message", style, text)
            out.append(("", 0))
    return out
p = PAM.pam()
p.start(sys.argv[1])
p.set_item(PAM.PAM_USER, sys.argv[2])
p.set_item(PAM.PAM_CONV, conv)
calls = {"authenticate": p.authenticate, "setcred": lambda f: p.setcred(f | PAM.PAM_ESTABLISH_CRED),
         "acct_mgmt": p.acct_mgmt, "open_session": p.open_session, "close_session": p.close_session,
         "chauthtok": p.chauthtok}
for op in sys.argv[3:]:
    try:
        calls[op](0)
        print("result", op, 0)
    except PAM.error as e:
        print("result", op, e.args[1])
    sys.stdout.flush()
for kv in p.getenvlist() or []:
    print("env", kv)
# Dropping the last reference ends the transaction (pam_end).
del calls, p
`

var gopamBuild struct {
	sync.Mutex
	bin []byte
}

// gopamCommand builds the gopam command once per process (from the module
// the test runs in, which must require github.com/gopam/pam) and writes a
// private copy.
func gopamCommand(t testing.TB) string {
	t.Helper()
	gopamBuild.Lock()
	defer gopamBuild.Unlock()
	if gopamBuild.bin == nil {
		goCmd, err := lookProgram("go", "golang-go")
		if err != nil {
			t.Fatalf("%v", err)
		}
		tmp, err := os.MkdirTemp("", "pamtest-gopam-")
		if err != nil {
			t.Fatalf("pamtest: %v", err)
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command(goCmd, "build", "-o", filepath.Join(tmp, "gopam"), "github.com/gopam/pam/cmd/gopam")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pamtest: building the gopam command: %v\n%s", err, out)
		}
		if gopamBuild.bin, err = os.ReadFile(filepath.Join(tmp, "gopam")); err != nil {
			t.Fatalf("pamtest: %v", err)
		}
	}
	p := filepath.Join(t.TempDir(), "gopam")
	if err := writeExecutable(p, gopamBuild.bin); err != nil {
		t.Fatalf("pamtest: %v", err)
	}
	return p
}

// nativeCode translates a number a Linux-PAM host printed.
func nativeCode(n int) pam.Code {
	return pam.Code(libpam.Numbers(libpam.ImplLinuxPAM).CodeOf(n))
}

// codeOfText finds the code whose description is text (pamtester prints
// libpam's pam_strerror, which is gopam's description but for its case).
func codeOfText(text string) (pam.Code, bool) {
	for c := pam.Success; c <= pam.ErrUnknownCode; c++ {
		if strings.EqualFold(c.Error(), strings.TrimSpace(text)) {
			return c, true
		}
	}
	return 0, false
}

// RunHost runs the transaction tx in the host kind against the stack st
// and reports what happened; it fails the test when the host cannot be run
// at all (naming the Debian package to install when it is missing) or
// prints something it does not understand. A host that crashes is reported
// through Outcome.Results lacking the operations it did not finish and the
// test is failed.
func RunHost(t testing.TB, st *Stack, kind HostKind, tx Transaction) Outcome {
	t.Helper()
	var cmd *exec.Cmd
	switch kind {
	case HostC:
		args := []string{}
		for _, a := range tx.Answers {
			args = append(args, "-a", a)
		}
		args = append(args, st.Dir(), tx.Service, tx.User)
		for _, op := range tx.Ops {
			c, ok := cOps[op]
			if !ok {
				t.Fatalf("pamtest: unknown operation %q", op)
			}
			args = append(args, c)
		}
		cmd = exec.Command(Host(t), append(args, "env")...)
		cmd.Stdin = strings.NewReader("")
	case HostPamtester:
		p, err := lookProgram("pamtester", "pamtester")
		if err != nil {
			t.Fatalf("%v", err)
		}
		cmd = exec.Command(p, append([]string{tx.Service, tx.User}, tx.Ops...)...)
		cmd.Env = append(os.Environ(), st.WrapperEnv()...)
		cmd.Stdin = strings.NewReader(strings.Join(tx.Answers, "\n") + "\n")
	case HostPython:
		py := "/usr/bin/python3"
		chk := exec.Command(py, "-c", "import PAM")
		if err := chk.Run(); err != nil {
			t.Fatalf("%v", &MissingError{What: "Python module PAM for " + py, Package: "python3-pam"})
		}
		cmd = exec.Command(py, append([]string{"-c", pythonHost, tx.Service, tx.User}, tx.Ops...)...)
		cmd.Env = append(os.Environ(), st.WrapperEnv()...)
		cmd.Env = append(cmd.Env, "PAMTEST_ANSWERS="+strings.Join(tx.Answers, "\n"))
	case HostGopam:
		args := []string{"--json", "--confdir", st.Dir()}
		for _, a := range tx.Answers {
			args = append(args, "--answer", a)
		}
		cmd = exec.Command(gopamCommand(t), append(append(args, tx.Service, tx.User), tx.Ops...)...)
		cmd.Stdin = strings.NewReader("")
	default:
		t.Fatalf("pamtest: unknown host %q", kind)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := Outcome{Host: kind, Output: stdout.String() + stderr.String()}
	if cmd.Process != nil {
		o.PID = cmd.Process.Pid
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("pamtest: running %s: %v\n%s", kind, err, o.Output)
	}
	if exit != nil {
		o.Status = exit.ExitCode()
		if !exit.Exited() {
			t.Errorf("pamtest: host %s died: %v\n%s", kind, exit, o.Output)
		}
	}
	if err := parseOutcome(&o, tx, stdout.String(), stderr.String()); err != nil {
		t.Fatalf("pamtest: %s: %v\n%s", kind, err, o.Output)
	}
	return o
}

func parseOutcome(o *Outcome, tx Transaction, stdout, stderr string) error {
	switch o.Host {
	case HostC:
		o.Env = map[string]string{}
		rev := map[string]string{}
		for k, v := range cOps {
			rev[v] = k
		}
		for _, line := range strings.Split(stdout, "\n") {
			f := strings.SplitN(line, " ", 2)
			if len(f) != 2 {
				continue
			}
			if f[0] == "env" {
				k, v, _ := strings.Cut(f[1], "=")
				o.Env[k] = v
			} else if op, ok := rev[f[0]]; ok {
				n, err := strconv.Atoi(f[1])
				if err != nil {
					return fmt.Errorf("bad line %q", line)
				}
				o.Results = append(o.Results, OpResult{op, nativeCode(n)})
			}
		}
	case HostPython:
		o.Env = map[string]string{}
		for _, line := range strings.Split(stdout, "\n") {
			if kv, ok := strings.CutPrefix(line, "env "); ok {
				k, v, _ := strings.Cut(kv, "=")
				o.Env[k] = v
			} else if r, ok := strings.CutPrefix(line, "result "); ok {
				op, n, _ := strings.Cut(r, " ")
				code, err := strconv.Atoi(n)
				if err != nil {
					return fmt.Errorf("bad line %q", line)
				}
				o.Results = append(o.Results, OpResult{op, nativeCode(code)})
			}
		}
	case HostPamtester:
		// One line per operation that ran: success lines on stdout, the
		// failure's pam_strerror on stderr, after any prompts, which end
		// without a newline.
		done := strings.Count(stdout, "pamtester: ")
		for i := 0; i < done && i < len(tx.Ops); i++ {
			o.Results = append(o.Results, OpResult{tx.Ops[i], pam.Success})
		}
		for _, line := range strings.Split(stderr, "\n") {
			if i := strings.LastIndex(line, "pamtester: "); i >= 0 && done < len(tx.Ops) {
				msg := line[i+len("pamtester: "):]
				c, ok := codeOfText(msg)
				if !ok {
					return fmt.Errorf("unknown error text %q", msg)
				}
				o.Results = append(o.Results, OpResult{tx.Ops[done], c})
				break
			}
		}
	case HostGopam:
		var doc struct {
			Operations []struct {
				Op    string `json:"op"`
				Errno int    `json:"errno"`
			} `json:"operations"`
			Env []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"env"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			return fmt.Errorf("bad JSON: %v", err)
		}
		for _, op := range doc.Operations {
			o.Results = append(o.Results, OpResult{op.Op, nativeCode(op.Errno)})
		}
		o.Env = map[string]string{}
		for _, e := range doc.Env {
			o.Env[e.Name] = e.Value
		}
	}
	return nil
}
