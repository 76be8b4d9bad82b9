package module_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopam/pam/pamtest"
)

// forkHost is a C host that forks the way sshd and su do: it authenticates
// in the parent, forks, and the child calls setcred, open_session,
// close_session and pam_end; the parent waits for the child, bounded by a
// timeout after which the child is killed and the run counted as a hang,
// and ends its copy of the transaction.
//
//	forkhost CONFDIR SERVICE USER PASSWORD RUNS TIMEOUT_SECONDS
//
// It prints one line per failed run and a summary line
// "runs N authfail A childfail C hangs H".
const forkHost = `
#include <security/pam_appl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *password;

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)data;
	struct pam_response *r = calloc((size_t)n, sizeof *r);
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			r[i].resp = strdup(password);
	*resp = r;
	return PAM_SUCCESS;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 7)
		return 2;
	password = argv[4];
	int runs = atoi(argv[5]), timeout = atoi(argv[6]);
	int authfail = 0, childfail = 0, hangs = 0;
	for (int i = 0; i < runs; i++) {
		pam_handle_t *h = NULL;
		struct pam_conv c = {conv, NULL};
		int rc = pam_start_confdir(argv[2], argv[3], &c, argv[1], &h);
		if (rc != PAM_SUCCESS) {
			printf("run %d start %d\n", i, rc);
			return 1;
		}
		rc = pam_authenticate(h, 0);
		if (rc != PAM_SUCCESS) {
			printf("run %d auth %d\n", i, rc);
			authfail++;
			pam_end(h, rc);
			continue;
		}
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			int r1 = pam_setcred(h, PAM_ESTABLISH_CRED);
			int r2 = pam_open_session(h, 0);
			int r3 = pam_close_session(h, 0);
			pam_end(h, PAM_SUCCESS);
			_exit(r1 ? 100 + r1 : r2 ? 150 + r2 : r3 ? 200 + r3 : 0);
		}
		double deadline = now() + timeout;
		int st = 0;
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR)
				return 1;
			if (now() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				printf("run %d hang\n", i);
				hangs++;
				st = 0;
				break;
			}
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFEXITED(st))
				printf("run %d child %d\n", i, WEXITSTATUS(st));
			else
				printf("run %d child signal %d\n", i, WTERMSIG(st));
			childfail++;
		}
		rc = pam_end(h, PAM_SUCCESS);
		if (rc != PAM_SUCCESS)
			printf("run %d end %d\n", i, rc);
	}
	printf("runs %d authfail %d childfail %d hangs %d\n", runs, authfail, childfail, hangs);
	return 0;
}
`

// forkSummary runs the forking host and returns its output lines and the
// counts of its summary.
func forkSummary(t *testing.T, bin, confdir, password string, runs int, env ...string) ([]string, map[string]int) {
	t.Helper()
	// Bounded twice over: each run by the host's own timeout (120 s, far
	// above a run's few milliseconds), the whole by the context.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, confdir, "gotest", "alice", password, strconv.Itoa(runs), "120")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("forking host: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 8 || f[0] != "runs" {
		t.Fatalf("forking host printed no summary:\n%s", out)
	}
	counts := map[string]int{}
	for i := 0; i+1 < len(f); i += 2 {
		counts[f[i]], _ = strconv.Atoi(f[i+1])
	}
	return lines[:len(lines)-1], counts
}

// TestForkingHost1000 runs the forking host many times in a row in each
// mode: 1,000 in the test command's own step (GOPAM_MODULE_FORK_RUNS=1000),
// 100 by default and 20 under the race detector, so that the package's
// whole run stays far inside go test's 10-minute timeout on a loaded
// machine. Every run: every child's setcred, open_session and close_session succeed, no
// run hangs. In-process, the child's calls run in the helper (the Go
// runtime's threads did not survive the fork); isolated, the child uses the
// helper its parent started, so the data authenticate set is still there.
func TestForkingHost1000(t *testing.T) {
	m := testModule(t)
	bin := pamtest.CompileProgram(t, "forkhost", forkHost)
	for _, md := range m.Modes() {
		t.Run(md.Name, func(t *testing.T) {
			// One run with events, to see where each call ran.
			st, out := gotestStack(t, md.Path, "pass=pw")
			_, c := forkSummary(t, bin, st.Dir(), "pw", 1)
			if c["authfail"]+c["childfail"]+c["hangs"] != 0 {
				t.Fatalf("one forking run failed: %v", c)
			}
			ev := events(t, out)
			pids := pidsOf(ev)
			// In-process, authenticate ran in the host and the child's
			// calls in a helper the child started; isolated, all ran in
			// the one helper the parent started.
			if shared := pids["authenticate"] == pids["setcred"]; shared != (md.Name == "isolated") {
				t.Errorf("authenticate ran in pid %d, the child's setcred in %d: want the same process = %v",
					pids["authenticate"], pids["setcred"], md.Name == "isolated")
			}
			wantData := "data a=a b=b2 err=<nil>"
			if md.Name == "in-process" {
				// The parent's data lives in the parent's Go heap.
				wantData = "data a=<nil> b=<nil> err=pam module: pam_get_data: no module specific data is present"
			}
			if !has(ev, wantData) {
				t.Errorf("no event %q in\n%s", wantData, strings.Join(ev, "\n"))
			}

			runs := envInt(t, "GOPAM_MODULE_FORK_RUNS", 100)
			if raceEnabled {
				runs = min(runs, 20)
			}
			st, _ = gotestStack(t, md.Path, "pass=pw")
			lines, c := forkSummary(t, bin, st.Dir(), "pw", runs)
			if c["runs"] != runs || c["authfail"] != 0 || c["childfail"] != 0 || c["hangs"] != 0 {
				t.Errorf("forking host: %v\n%s", c, strings.Join(lines, "\n"))
			}
		})
	}
	// Without a helper, the in-process library refuses the child's calls
	// with PAM_SYSTEM_ERR (logged) instead of entering a Go runtime that
	// lost its threads: no hang, no crash.
	t.Run("in-process without helper", func(t *testing.T) {
		st, _ := gotestStack(t, m.Bare, "pass=pw")
		lines, c := forkSummary(t, bin, st.Dir(), "pw", 50)
		if c["runs"] != 50 || c["authfail"] != 0 || c["hangs"] != 0 || c["childfail"] != 50 {
			t.Fatalf("forking host: %v\n%s", c, strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, " child 104") { // 100 + PAM_SYSTEM_ERR from setcred
				t.Errorf("unexpected line %q, want the child's setcred refused with PAM_SYSTEM_ERR", l)
			}
		}
	})
}

// TestUnimplementedAnswersInC: a service function the module does not
// implement answers PAM_IGNORE from the C table filled at registration,
// entering neither Go nor a helper. Proof: in a forked child, where the
// library has no helper and refuses every call that would need Go, the
// unimplemented setcred and session calls still succeed (the stack's
// pam_permit decides), while the same stack with a module that implements
// them is refused.
func TestUnimplementedAnswersInC(t *testing.T) {
	m := testModule(t)
	bin := pamtest.CompileProgram(t, "forkhost", forkHost)
	st := pamtest.New(t)
	st.Service("gotest",
		"auth required "+m.Bare+" permit",
		"auth required pam_permit.so",
		"session required "+m.Bare,
		"session required pam_permit.so")
	lines, c := forkSummary(t, bin, st.Dir(), "pw", 5, "GOPAM_TESTMOD_AUTH_ONLY=1")
	if c["runs"] != 5 || c["authfail"] != 0 || c["childfail"] != 0 || c["hangs"] != 0 {
		t.Errorf("authenticate-only module, forking host: %v\n%s", c, strings.Join(lines, "\n"))
	}
	lines, c = forkSummary(t, bin, st.Dir(), "pw", 5)
	if c["runs"] != 5 || c["authfail"] != 0 || c["childfail"] != 5 || c["hangs"] != 0 {
		t.Errorf("full module, forking host: %v, want every child refused\n%s", c, strings.Join(lines, "\n"))
	}
}

// loopHost runs start/authenticate/end transactions on several services,
// alternating them round by round, and prints one line per round and
// service: "round R SERVICE NANOSECONDS_PER_TRANSACTION FAILURES". With
// -k MODULE it first dlopens MODULE and keeps it, so that libpam's own
// dlopen and dlclose of it only move a reference count.
//
//	loophost [-k MODULE] CONFDIR ROUNDS PER_ROUND SERVICE...
const loopHost = `
#include <security/pam_appl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void)n; (void)msg; (void)resp; (void)data;
	return PAM_CONV_ERR;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		if (dlopen(argv[2], RTLD_NOW) == NULL)
			return 1;
		argv += 2;
		argc -= 2;
	}
	if (argc < 5)
		return 2;
	int rounds = atoi(argv[2]), per = atoi(argv[3]);
	struct pam_conv c = {conv, NULL};
	for (int r = 0; r < rounds; r++) {
		for (int s = 4; s < argc; s++) {
			int fail = 0;
			struct timespec a, b;
			clock_gettime(CLOCK_MONOTONIC, &a);
			for (int i = 0; i < per; i++) {
				pam_handle_t *h = NULL;
				if (pam_start_confdir(argv[s], "alice", &c, argv[1], &h) != PAM_SUCCESS)
					return 1;
				if (pam_authenticate(h, 0) != PAM_SUCCESS)
					fail++;
				pam_end(h, PAM_SUCCESS);
			}
			clock_gettime(CLOCK_MONOTONIC, &b);
			double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / per;
			printf("round %d %s %.0f %d\n", r, argv[s], ns, fail);
			fflush(stdout);
		}
	}
	return 0;
}
`

// loopRounds runs the loop host and returns, per service, the time per
// transaction of each round, failing the test on any failed transaction.
func loopRounds(t *testing.T, bin, keep, confdir string, rounds, per int, services ...string) map[string][]float64 {
	t.Helper()
	args := append([]string{confdir, strconv.Itoa(rounds), strconv.Itoa(per)}, services...)
	if keep != "" {
		args = append([]string{"-k", keep}, args...)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("loop host: %v\n%s", err, out)
	}
	ns := map[string][]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var r, fail int
		var svc string
		var v float64
		if _, err := fmt.Sscanf(sc.Text(), "round %d %s %f %d", &r, &svc, &v, &fail); err != nil {
			t.Fatalf("loop host line %q: %v", sc.Text(), err)
		}
		if fail != 0 {
			t.Errorf("%s: %d of %d transactions failed in round %d", svc, fail, per, r)
		}
		ns[svc] = append(ns[svc], v)
	}
	for _, s := range services {
		if len(ns[s]) != rounds {
			t.Fatalf("loop host ran %d rounds of %s, want %d:\n%s", len(ns[s]), s, rounds, out)
		}
	}
	return ns
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// envInt reads a positive count from the environment.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

// TestTransactionCost runs 10,000 start/authenticate/end transactions with
// the Go module in-process in a C host, interleaved round by round with
// the same number on pam_permit, and 200 with the isolated mode (with
// GOPAM_MODULE_FIGURES=1, as the test command's figures step runs it;
// else 1,000 and 40). It
// asserts that every transaction succeeded and the host did not crash (the
// library stays mapped across pam_end), and reports the cost as ratios to
// pam_permit measured in the same run (go test -v -run TestTransactionCost
// ./module). The figures are reported, never judged: a loaded machine moves
// them.
func TestTransactionCost(t *testing.T) {
	if raceEnabled {
		t.Skip("measured without the race detector (the plain pass of the test command runs it)")
	}
	m := testModule(t)
	bin := pamtest.CompileProgram(t, "loophost", loopHost)
	st := pamtest.New(t)
	st.Service("permit", "auth required pam_permit.so")
	st.Service("goin", "auth required "+m.InProcess+" permit")
	st.Service("goiso", "auth required "+m.Isolated+" permit")

	report := func(what string, per int, ns map[string][]float64, svc string) {
		var ratios []float64
		for i := range ns["permit"] {
			ratios = append(ratios, ns[svc][i]/ns["permit"][i])
		}
		t.Logf("%s, %d transactions: %.1f µs per transaction, pam_permit %.1f µs: ratio %.3f (median of %d interleaved rounds)",
			what, len(ns[svc])*per, median(ns[svc])/1000, median(ns["permit"])/1000, median(ratios), len(ratios))
	}
	// 10,000 in-process transactions in the test command's figures step
	// (GOPAM_MODULE_FIGURES=1), 1,000 otherwise.
	rounds, isoRounds := 10, 5
	if os.Getenv("GOPAM_MODULE_FIGURES") != "1" {
		rounds, isoRounds = 1, 1
	}
	report("in-process", 1000, loopRounds(t, bin, "", st.Dir(), rounds, 1000, "permit", "goin"), "goin")
	// The Go library pins itself, so libpam loads it only once; pam_permit
	// kept loaded by the host is the baseline without that advantage.
	permit, err := pamtest.ModulePath("pam_permit.so")
	if err != nil {
		t.Fatal(err)
	}
	report("in-process against pam_permit kept loaded", 1000, loopRounds(t, bin, permit, st.Dir(), rounds, 1000, "permit", "goin"), "goin")
	report("isolated", 40, loopRounds(t, bin, "", st.Dir(), isoRounds, 40, "permit", "goiso"), "goiso")
}
