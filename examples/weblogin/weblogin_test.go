package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// lockedBuffer collects the server's log; reap goroutines may write to it
// after a test has ended, so it is not t.Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testServer runs the server on the embedded demo stack, written under
// t.TempDir, on 127.0.0.1 with a random port.
type testServer struct {
	*httptest.Server
	log *lockedBuffer
	s   *server
}

func newTestServer(t *testing.T, opt options) *testServer {
	t.Helper()
	confDir, err := writeDemoStack(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opt.Service, opt.ConfDir = demoService, confDir
	logs := new(lockedBuffer)
	opt.Log = log.New(logs, "", log.Lmicroseconds)
	s := newServer(opt)
	t.Cleanup(s.Close) // runs after ts.Close
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), demoPassword) {
			t.Errorf("the server logged the password:\n%s", logs)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &testServer{ts, logs, s}
}

// expire times out the login of page r through the server's test hook and
// waits until its transaction has ended and the server has logged its end
// and counted it out, so that no verdict depends on a clock.
func (ts *testServer) expire(t *testing.T, token string) {
	t.Helper()
	if !ts.s.expire(token) {
		t.Fatalf("no login in progress for token %q", token)
	}
	ts.waitFor(t, "the end of the expired login", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return ts.s.live == 0 && strings.Contains(ts.log.String(), "dialog idle timeout")
	})
}

// waitFor polls cond until it holds. The deadline is only a guard against a
// hang: the event it waits for takes milliseconds.
func (ts *testServer) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// A response page, as the tests see it.
type result struct {
	code    int
	body    string
	state   string // body's data-state
	step    string // body's data-step
	token   string
	inputs  []input
	message string
}

type input struct{ name, typ, label string }

var (
	reState   = regexp.MustCompile(`<body data-state="([^"]*)" data-step="([^"]*)">`)
	reToken   = regexp.MustCompile(`<input type="hidden" name="token" value="([^"]*)">`)
	reInput   = regexp.MustCompile(`<label for="([^"]*)">([^<]*)</label>\n<input id="[^"]*" name="[^"]*" type="([^"]*)"`)
	reMessage = regexp.MustCompile(`<p id="message"[^>]*>([^<]*)</p>`)
)

func parse(t *testing.T, resp *http.Response) result {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{code: resp.StatusCode, body: string(b)}
	if m := reState.FindStringSubmatch(r.body); m != nil {
		r.state, r.step = m[1], m[2]
	}
	if m := reToken.FindStringSubmatch(r.body); m != nil {
		r.token = m[1]
	}
	for _, m := range reInput.FindAllStringSubmatch(r.body, -1) {
		r.inputs = append(r.inputs, input{name: m[1], label: m[2], typ: m[3]})
	}
	if m := reMessage.FindStringSubmatch(r.body); m != nil {
		r.message = m[1]
	}
	if strings.Contains(r.body, demoPassword) && r.state != "prompt" {
		// The demo's greeting names the password; no other page may.
		t.Errorf("page %q shows the password:\n%s", r.state, r.body)
	}
	return r
}

func (ts *testServer) start(t *testing.T) result {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, resp)
}

// answer submits the form of page r with one answer per input.
func (ts *testServer) answer(t *testing.T, r result, answers ...string) result {
	t.Helper()
	v := url.Values{"token": {r.token}, "step": {r.step}}
	for i, in := range r.inputs {
		if i < len(answers) {
			v.Set(in.name, answers[i])
		}
	}
	resp, err := ts.Client().PostForm(ts.URL+"/login", v)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, resp)
}

// wantPrompt checks that r asks for exactly one answer of the given input
// type and label.
func wantPrompt(t *testing.T, r result, typ, label string) {
	t.Helper()
	if r.code != http.StatusOK || r.state != "prompt" || len(r.inputs) != 1 || r.inputs[0].typ != typ || r.inputs[0].label != label {
		t.Fatalf("got %d %q with inputs %+v, want one %s input %q:\n%s", r.code, r.state, r.inputs, typ, label, r.body)
	}
}

func wantEnd(t *testing.T, r result, code int, state, message string) {
	t.Helper()
	if r.code != code || r.state != state || !strings.Contains(strings.ToLower(r.message), message) {
		t.Fatalf("got %d %q %q, want %d %q with a message containing %q:\n%s", r.code, r.state, r.message, code, state, message, r.body)
	}
	if len(r.inputs) != 0 || r.token != "" {
		t.Fatalf("the final page has a form:\n%s", r.body)
	}
}

// TestHTTPLogin walks the demo stack's prompts: the user name (echo on),
// then the password (echo off), then success. The password is checked by
// pam_exec from the token pam_stress stored, with no third prompt.
func TestHTTPLogin(t *testing.T) {
	ts := newTestServer(t, options{})
	r := ts.start(t)
	wantPrompt(t, r, "text", "username: ")
	if !strings.Contains(r.body, "gopam weblogin demo: user demo") {
		t.Errorf("pam_echo's greeting is missing:\n%s", r.body)
	}
	tok := r.token
	r = ts.answer(t, r, demoUser)
	wantPrompt(t, r, "password", "STRESS Password: ")
	if r.token != tok {
		t.Errorf("the token changed from %q to %q", tok, r.token)
	}
	r = ts.answer(t, r, demoPassword)
	wantEnd(t, r, http.StatusOK, "success", "welcome, demo")

	// The finished login is forgotten.
	r = ts.answer(t, result{token: tok, step: "2", inputs: []input{{name: "a0"}}}, demoPassword)
	wantEnd(t, r, http.StatusOK, "unknown", "timed out or has already ended")
}

// TestHTTPWrongPassword ends on the failure page.
func TestHTTPWrongPassword(t *testing.T) {
	ts := newTestServer(t, options{})
	for _, c := range []struct{ name, user, password string }{
		{"password", demoUser, "wrong"},
		{"empty", demoUser, ""}, // an empty answer is "", not NULL: pam_exec does not ask again
		{"user", "alice", demoPassword},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.start(t)
			r = ts.answer(t, r, c.user)
			wantPrompt(t, r, "password", "STRESS Password: ")
			r = ts.answer(t, r, c.password)
			wantEnd(t, r, http.StatusForbidden, "failure", "authentication failure")
		})
	}
}

// TestHTTPTimeout abandons logins as the idle timeout does, at the first
// prompt and at the second, through the server's test hook (no clock), then
// answers: the late answer is told the login timed out, the log says so and
// the login no longer counts against MaxLogins.
func TestHTTPTimeout(t *testing.T) {
	for _, at := range []int{1, 2} {
		t.Run(map[int]string{1: "user", 2: "password"}[at], func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, options{})
			r := ts.start(t)
			if at == 2 {
				r = ts.answer(t, r, demoUser)
			}
			wantPrompt(t, r, map[int]string{1: "text", 2: "password"}[at], map[int]string{1: "username: ", 2: "STRESS Password: "}[at])
			ts.expire(t, r.token)
			r = ts.answer(t, r, demoPassword)
			wantEnd(t, r, http.StatusOK, "timeout", "timed out")
		})
	}
	// The real idle timer: a login nobody answers ends by itself and is
	// forgotten after Linger. The test waits for those events, not for a
	// time, so a slow machine makes it slower, never red.
	t.Run("forgotten", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, options{Idle: 100 * time.Millisecond, Linger: time.Millisecond})
		r := ts.start(t)
		wantPrompt(t, r, "text", "username: ")
		ts.waitFor(t, "the idle timeout and Linger", func() bool {
			ts.s.mu.Lock()
			defer ts.s.mu.Unlock()
			return ts.s.live == 0 && len(ts.s.logins) == 0
		})
		r = ts.answer(t, r, demoUser)
		wantEnd(t, r, http.StatusOK, "unknown", "timed out")
		if !strings.Contains(ts.log.String(), "dialog idle timeout") {
			t.Errorf("the log does not say the login timed out:\n%s", ts.log)
		}
	})
}

// TestHTTPResubmit sends a form twice: the second copy must not answer the
// next prompt.
func TestHTTPResubmit(t *testing.T) {
	ts := newTestServer(t, options{})
	first := ts.start(t)
	r := ts.answer(t, first, demoUser)
	wantPrompt(t, r, "password", "STRESS Password: ")
	again := ts.answer(t, first, demoPassword)
	wantPrompt(t, again, "password", "STRESS Password: ")
	if !strings.Contains(again.body, "already sent") || again.step != r.step {
		t.Fatalf("resubmitted form: want the current step %s with a notice:\n%s", r.step, again.body)
	}
	r = ts.answer(t, again, demoPassword)
	wantEnd(t, r, http.StatusOK, "success", "welcome, demo")
}

// TestHTTPBadAnswer sends an answer libpam cannot take; the same prompt is
// shown again.
func TestHTTPBadAnswer(t *testing.T) {
	ts := newTestServer(t, options{})
	r := ts.start(t)
	for _, bad := range []string{"de\x00mo", strings.Repeat("x", maxAnswer+1)} {
		r2 := ts.answer(t, r, bad)
		wantPrompt(t, r2, "text", "username: ")
		if !strings.Contains(r2.body, "no NUL character") {
			t.Fatalf("no notice about the bad answer:\n%s", r2.body)
		}
		r = r2
	}
	r = ts.answer(t, r, demoUser)
	r = ts.answer(t, r, demoPassword)
	wantEnd(t, r, http.StatusOK, "success", "welcome, demo")
}

func TestHTTPLimitsAndRoutes(t *testing.T) {
	ts := newTestServer(t, options{MaxLogins: 1})
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/favicon.ico", http.StatusNotFound},
		{"GET", "/login", http.StatusMethodNotAllowed},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"HEAD", "/", http.StatusOK}, // and no login: the limit is not reached below
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
	}
	r := ts.start(t)
	wantPrompt(t, r, "text", "username: ")
	busy := ts.start(t)
	if busy.code != http.StatusServiceUnavailable || busy.state != "busy" {
		t.Fatalf("second login with MaxLogins 1: %d %q", busy.code, busy.state)
	}
	r = ts.answer(t, r, demoUser)
	r = ts.answer(t, r, demoPassword)
	wantEnd(t, r, http.StatusOK, "success", "welcome, demo")
	// The slot is free again once the dialog has ended.
	// (The deadline only guards against a hang: freeing takes milliseconds.)
	deadline := time.Now().Add(time.Minute)
	for r = ts.start(t); r.state == "busy" && time.Now().Before(deadline); r = ts.start(t) {
		time.Sleep(10 * time.Millisecond)
	}
	wantPrompt(t, r, "text", "username: ")
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:0": true, "localhost:80": true, "127.1.2.3:1": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.1:80": false, "example.com:80": false, "nonsense": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// chromium is where Debian's package chromium installs the browser.
const chromium = "/usr/bin/chromium"

// newBrowser starts headless Chromium for the test and returns a context
// for chromedp.Run in a fresh tab.
func newBrowser(t *testing.T) (context.Context, func() context.Context) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("this test drives a real browser and needs %s: install Debian package chromium (apt-get install -y chromium): %v", chromium, err)
	}
	var out lockedBuffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // needed as root, and where user namespaces are off
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&out),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", chromium, err, out.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser output:\n%s", out.String())
		}
	})
	return bctx, func() context.Context {
		tctx, tcancel := chromedp.NewContext(bctx)
		t.Cleanup(tcancel)
		return tctx
	}
}

// shown is what the browser shows.
type shown struct {
	state, title, message, html string
	inputType, label            string
}

// read waits for step's page and reads it.
func read(t *testing.T, ctx context.Context, step string) shown {
	t.Helper()
	var s shown
	var err error
	get := func(a chromedp.Action[string], into *string) {
		if err == nil {
			*into, err = chromedp.Run(ctx, a)
		}
	}
	attr := func(sel chromedp.CSS, name string, into *string) {
		if err == nil {
			var r chromedp.AttributeResult
			r, err = chromedp.Run(ctx, chromedp.AttributeValue(sel, name))
			*into = r.Value
		}
	}
	err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`body[data-step="`+step+`"]`)))
	attr("body", "data-state", &s.state)
	get(chromedp.Text(chromedp.ID("title")), &s.title)
	get(chromedp.OuterHTML(chromedp.CSS("html")), &s.html)
	if s.state == "prompt" {
		attr("#a0", "type", &s.inputType)
		get(chromedp.Text(chromedp.CSS(`label[for="a0"]`)), &s.label)
	} else {
		get(chromedp.Text(chromedp.ID("message")), &s.message)
	}
	if err != nil {
		t.Fatalf("reading step %s: %v\n%s", step, err, s.html)
	}
	return s
}

// fill types answer into the page's only input and sends the form.
func fill(t *testing.T, ctx context.Context, answer string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("a0"), answer), chromedp.Click(chromedp.ID("submit"))); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser logs in through the form in headless Chromium. The timeout
// case abandons the login through the server's test hook once the browser
// shows the password prompt, so that the browser's speed decides nothing.
func TestBrowser(t *testing.T) {
	_, tab := newBrowser(t)
	ts := newTestServer(t, options{})

	// walk goes through the demo's two prompts and returns the final page;
	// between shows the password prompt's page and may act on its login.
	walk := func(t *testing.T, base, user, password string, between func(token string)) shown {
		ctx := tab()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
			t.Fatal(err)
		}
		s := read(t, ctx, "1")
		if s.state != "prompt" || s.inputType != "text" || strings.TrimSpace(s.label) != "username:" {
			t.Fatalf("first page: %+v", s)
		}
		fill(t, ctx, user)
		s = read(t, ctx, "2")
		if s.state != "prompt" || s.inputType != "password" || strings.TrimSpace(s.label) != "STRESS Password:" {
			t.Fatalf("second page: %+v", s)
		}
		if between != nil {
			m := reToken.FindStringSubmatch(s.html)
			if m == nil {
				t.Fatalf("the second page has no token:\n%s", s.html)
			}
			between(m[1])
		}
		fill(t, ctx, password)
		s = read(t, ctx, "3")
		if strings.Contains(s.html, password) {
			t.Errorf("the final page shows the password:\n%s", s.html)
		}
		return s
	}

	t.Run("login", func(t *testing.T) {
		s := walk(t, ts.URL, demoUser, demoPassword, nil)
		if s.state != "success" || !strings.Contains(s.message, "Welcome, demo") {
			t.Fatalf("final page: %+v", s)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		s := walk(t, ts.URL, demoUser, "not-the-password", nil)
		if s.state != "failure" || !strings.Contains(strings.ToLower(s.message), "authentication failure") {
			t.Fatalf("final page: %+v", s)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		slow := newTestServer(t, options{})
		s := walk(t, slow.URL, demoUser, demoPassword, func(token string) {
			slow.expire(t, token) // the transaction has ended, logged and counted out
		})
		if s.state != "timeout" || !strings.Contains(s.message, "timed out") {
			t.Fatalf("final page: %+v", s)
		}
	})
}
