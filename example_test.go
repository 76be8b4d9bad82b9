package pam_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopam/pam"
)

// exampleStack writes a private service file, with absolute module paths, and
// returns its confdir. Real programs use the system's /etc/pam.d and leave
// Config.ConfDir empty.
func exampleStack(service string, lines ...string) string {
	dir, err := os.MkdirTemp("", "gopam-example")
	if err != nil {
		log.Fatal(err)
	}
	mods, err := pam.ModuleDir()
	if err != nil {
		log.Fatal(err)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		f[2] = filepath.Join(mods, f[2])
		lines[i] = strings.Join(f, " ")
	}
	if err := os.WriteFile(filepath.Join(dir, service), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	return dir
}

// Run is a whole transaction on the calling goroutine's own thread: the
// fastest way to check one login, as a server does per request. The
// transaction ends when the function returns.
func ExampleRun() {
	confdir := exampleStack("web",
		"auth required pam_permit.so",
		"account required pam_permit.so")
	defer os.RemoveAll(confdir)

	cfg := pam.Config{Service: "web", User: "alice", ConfDir: confdir, Conv: pam.Answers([]byte("the password"))}
	err := pam.Run(context.Background(), cfg, func(ctx context.Context, h *pam.Handle) error {
		return h.Login(ctx, 0)
	})
	fmt.Println("login:", err)
	// Output: login: <nil>
}

// A server that holds a user name and a password checks them in one call:
// CheckPassword runs Authenticate and AcctMgmt, answering by prompt style,
// and Classify says what the error means for the response.
func ExampleCheckPassword() {
	confdir := exampleStack("web",
		"auth required pam_permit.so",
		"account requisite pam_debug.so acct=acct_expired",
		"account required pam_permit.so")
	defer os.RemoveAll(confdir)

	cfg := pam.Config{Service: "web", ConfDir: confdir, RHost: "192.0.2.7"}
	for _, user := range []string{"alice", ""} {
		err := pam.CheckPassword(context.Background(), cfg, user, []byte("the password"))
		fmt.Printf("%q: %v\n", user, pam.Classify(err))
	}
	// Output:
	// "alice": account
	// "": input
}

// Lines answers prompts from a stream, one line each, as a script feeds
// them; echo-off answers are never written back.
func ExampleLines() {
	conv := pam.Lines(strings.NewReader("alice\nthe password\n"), os.Stdout)
	_, err := conv.Converse(context.Background(), []pam.Message{
		{Style: pam.PromptEchoOn, Text: "login: "},
		{Style: pam.PromptEchoOff, Text: "Password:"},
	})
	fmt.Println(err)
	// Output:
	// login: alice
	// Password:
	// <nil>
}

// A login checks the password (Authenticate) and then that the account may
// log in now (AcctMgmt): Login does both. Authenticate alone lets expired or
// locked accounts in.
func ExampleHandle_Login() {
	confdir := exampleStack("myapp",
		"auth required pam_permit.so",
		"account requisite pam_debug.so acct=acct_expired",
		"account required pam_permit.so")
	defer os.RemoveAll(confdir)

	h, err := pam.Start(pam.Config{
		Service: "myapp",
		User:    "alice",
		ConfDir: confdir,
		Conv:    pam.Answers([]byte("the password")),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	err = h.Login(context.Background(), 0)
	switch {
	case errors.Is(err, pam.ErrAuth):
		fmt.Println("wrong password")
	case errors.Is(err, pam.ErrAcctExpired):
		fmt.Println("the account has expired")
	case err != nil:
		fmt.Println("login failed:", err)
	default:
		fmt.Println("welcome")
	}
	// Output: the account has expired
}

// The PAM environment holds the variables the session modules set; hand it
// to the user's session with Env().List().
func ExampleEnv() {
	confdir := exampleStack("myapp",
		"auth required pam_permit.so",
		"session required pam_permit.so")
	defer os.RemoveAll(confdir)

	h, err := pam.Start(pam.Config{Service: "myapp", User: "alice", ConfDir: confdir, Conv: pam.Answers()})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	env := h.Env()
	if err := env.Set("LANG", "C.UTF-8"); err != nil {
		log.Fatal(err)
	}
	if err := h.OpenSession(context.Background(), 0); err != nil {
		log.Fatal(err)
	}
	lang, ok, _ := env.Get("LANG")
	fmt.Println(lang, ok)
	if err := env.Unset("LANG"); err != nil {
		log.Fatal(err)
	}
	n, _ := env.Len()
	fmt.Println(n, "variables")
	// Output:
	// C.UTF-8 true
	// 0 variables
}

// A server delays the client, not itself: Config.Delay receives the fail
// delay libpam computed after a failure, and no thread sleeps.
func ExampleConfig_delay() {
	confdir := exampleStack("myapp",
		"auth optional pam_faildelay.so delay=3000000",
		"auth required pam_deny.so")
	defer os.RemoveAll(confdir)

	var retryAfter time.Duration
	h, err := pam.Start(pam.Config{
		Service: "myapp", User: "alice", ConfDir: confdir, Conv: pam.Answers([]byte("guess")),
		Delay: func(_ context.Context, status error, d time.Duration) {
			if status != nil {
				retryAfter = d // e.g. refuse this client's next attempt until then
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	err = h.Authenticate(context.Background(), 0)
	fmt.Println(errors.Is(err, pam.ErrAuth), retryAfter >= 1500*time.Millisecond)
	// Output: true true
}

// A request/response server answers each prompt in its own request: the
// dialog keeps the PAM transaction waiting in between.
func ExampleStartDialog() {
	confdir := exampleStack("web",
		"auth required pam_stress.so",
		"account required pam_permit.so")
	defer os.RemoveAll(confdir)

	ctx := context.Background()
	d, err := pam.StartDialog(ctx, pam.Config{Service: "web", User: "alice", ConfDir: confdir}, time.Minute,
		func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	if err != nil {
		log.Fatal(err)
	}
	// Request 1: show the prompts.
	step, _ := d.Next(ctx)
	for _, m := range step.Prompts {
		fmt.Printf("%s %q\n", m.Style, m.Text)
	}
	// Request 2, maybe on another goroutine: the user's answers.
	if err := d.Answer(step.Seq, []pam.Response{{Data: []byte("password")}}); err != nil {
		log.Fatal(err)
	}
	step, _ = d.Next(ctx)
	fmt.Println("done:", step.Done, "error:", step.Err)
	// Output:
	// PAM_PROMPT_ECHO_OFF "STRESS Password: "
	// done: true error: <nil>
}

// A server answers "busy" at once when PAM is overloaded, rather than spend
// the request's deadline waiting: its pool of call slots lets a bounded
// number of requests wait, and every other one gets ErrNoSlot.
func ExampleSlots() {
	confdir := exampleStack("myapp", "auth required pam_permit.so", "account required pam_permit.so")
	logins := pam.NewSlots(2) // at most 2 threads in PAM for logins
	logins.SetMaxWaiting(2)   // and 2 requests waiting, which get a slot in time
	login := func(ctx context.Context, user string, password []byte) int {
		cfg := pam.Config{Service: "myapp", ConfDir: confdir, Slots: logins, SlotWait: 50 * time.Millisecond}
		switch pam.Classify(pam.CheckPassword(ctx, cfg, user, password)) {
		case pam.OutcomeOK:
			return 200
		case pam.OutcomeTemporary: // pam.ErrNoSlot among them
			return 503 // with Retry-After
		default:
			return 401
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(login(ctx, "alice", []byte("secret")), logins.InUse())
	// Output: 200 0
}
