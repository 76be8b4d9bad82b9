package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopam/pam"
)

// options configure a server.
type options struct {
	// Service and ConfDir select the PAM stack, as in pam.Config.
	Service, ConfDir string
	// Idle is how long a login may wait for the user's answer before it is
	// abandoned (pam.StartDialog's idle timeout).
	Idle time.Duration
	// Linger is how long a login that ended with nobody watching (an idle
	// timeout) is remembered, so that a late answer is told it timed out.
	Linger time.Duration
	// MaxLogins bounds the logins in progress: each one holds a PAM handle
	// and an OS thread until it ends.
	MaxLogins int
	// Log receives one line per login start and end. Answers are never
	// logged.
	Log *log.Logger
}

// maxAnswer is PAM_MAX_RESP_SIZE: the longest answer a module expects.
const maxAnswer = 512

// server walks browsers through PAM dialogs, one HTTP request per batch of
// prompts. A login's dialog lives in logins under a random token, which the
// form carries in a hidden field.
type server struct {
	opt  options
	mux  *http.ServeMux
	page *template.Template

	mu     sync.Mutex
	logins map[string]*login
	live   int    // logins whose dialog has not ended
	lastID uint64 // numbers logins in the log, so tokens are never logged
}

// login is one browser's PAM dialog.
type login struct {
	id uint64
	d  *pam.Dialog
	// lock serialises the requests of one login (a double submit must not
	// answer the next batch with the previous batch's answers). It is a
	// channel so that a waiting request can give up with its context.
	lock chan struct{}
	// Guarded by lock:
	seq     int      // number of the step last shown, echoed by the form
	step    pam.Step // the step last shown
	pending bool     // step is waiting for its answers
	// user is PAM_USER at the end, written by the dialog's run function
	// before Done is closed.
	user string
}

//go:embed page.html
var pageHTML string

func newServer(opt options) *server {
	if opt.Idle <= 0 {
		opt.Idle = time.Minute
	}
	if opt.Linger <= 0 {
		opt.Linger = 10 * time.Minute
	}
	if opt.MaxLogins <= 0 {
		opt.MaxLogins = 100
	}
	if opt.Log == nil {
		opt.Log = log.Default()
	}
	s := &server{
		opt:    opt,
		mux:    http.NewServeMux(),
		page:   template.Must(template.New("page").Parse(pageHTML)),
		logins: make(map[string]*login),
	}
	s.mux.HandleFunc("GET /{$}", s.start)
	s.mux.HandleFunc("POST /login", s.answer)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Close cancels the logins in progress and waits until their PAM handles
// are closed.
func (s *server) Close() {
	s.mu.Lock()
	ds := make([]*pam.Dialog, 0, len(s.logins))
	for _, l := range s.logins {
		ds = append(ds, l.d)
	}
	s.mu.Unlock()
	for _, d := range ds {
		d.Cancel()
	}
	for _, d := range ds {
		<-d.Done()
	}
}

// start begins a login and shows its first prompts.
func (s *server) start(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		return // no dialog for a HEAD
	}
	s.mu.Lock()
	if s.live >= s.opt.MaxLogins {
		s.mu.Unlock()
		s.render(w, http.StatusServiceUnavailable, page{State: "busy", Title: "Busy",
			Message: "Too many logins are in progress. Try again in a minute.", Again: true})
		return
	}
	s.live++
	s.lastID++
	l := &login{id: s.lastID, lock: make(chan struct{}, 1)}
	s.mu.Unlock()

	rhost, _, _ := net.SplitHostPort(r.RemoteAddr)
	cfg := pam.Config{Service: s.opt.Service, ConfDir: s.opt.ConfDir, AskUser: true, RHost: rhost}
	d, err := pam.StartDialog(r.Context(), cfg, s.opt.Idle, func(ctx context.Context, h *pam.Handle) error {
		err := h.Login(ctx, 0)
		if u, uerr := h.Item(pam.ItemUser); uerr == nil {
			l.user = u
		}
		return err
	})
	if err != nil {
		s.mu.Lock()
		s.live--
		s.mu.Unlock()
		s.opt.Log.Printf("login %d: cannot start PAM: %v", l.id, err)
		s.render(w, http.StatusInternalServerError, page{State: "error", Title: "Login unavailable",
			Message: "The server could not start a PAM transaction.", Again: true})
		return
	}
	l.d = d
	tok := rand.Text()
	l.lock <- struct{}{}
	defer func() { <-l.lock }()
	s.mu.Lock()
	s.logins[tok] = l
	s.mu.Unlock()
	s.opt.Log.Printf("login %d: started for %s", l.id, r.RemoteAddr)
	go s.reap(tok, l)
	s.advance(w, r, tok, l)
}

// reap waits for the end of l's dialog, then forgets l after a while,
// unless a request has shown the end and forgotten it already.
func (s *server) reap(tok string, l *login) {
	<-l.d.Done()
	s.mu.Lock()
	s.live--
	s.mu.Unlock()
	if err := l.d.Err(); err != nil {
		s.opt.Log.Printf("login %d: failed: %v", l.id, err)
	} else {
		s.opt.Log.Printf("login %d: %q logged in", l.id, l.user)
	}
	time.AfterFunc(s.opt.Linger, func() { s.forget(tok, l) })
}

// expire abandons the login of token tok as its idle timeout would, and
// waits until its PAM transaction has ended. It reports whether such a login
// was in progress. The tests use it to time a login out without a clock.
func (s *server) expire(tok string) bool {
	s.mu.Lock()
	l := s.logins[tok]
	s.mu.Unlock()
	if l == nil || l.d == nil {
		return false
	}
	l.d.Expire()
	<-l.d.Done()
	return true
}

// forget removes l from the logins.
func (s *server) forget(tok string, l *login) {
	s.mu.Lock()
	if s.logins[tok] == l {
		delete(s.logins, tok)
	}
	s.mu.Unlock()
}

// answer hands the form's answers to the login's pending prompts and shows
// what comes next.
func (s *server) answer(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	l := s.logins[tok]
	s.mu.Unlock()
	if l == nil {
		s.render(w, http.StatusOK, page{State: "unknown", Title: "Login timed out",
			Message: "This login timed out or has already ended.", Again: true})
		return
	}
	select {
	case l.lock <- struct{}{}:
		defer func() { <-l.lock }()
	case <-r.Context().Done():
		return
	}
	if !l.pending {
		// An earlier request answered but went away before the next step
		// came: show that step now; this form answered an old one.
		s.advance(w, r, tok, l)
		return
	}
	if r.PostForm.Get("step") != strconv.Itoa(l.seq) {
		s.showStep(w, tok, l, "This form was already sent; here is where the login stands.")
		return
	}
	resps := make([]pam.Response, len(l.step.Prompts))
	binary := false
	for i, m := range l.step.Prompts {
		switch {
		case m.Style == pam.BinaryPrompt:
			binary = true
		case m.Style.IsPrompt():
			a := r.PostForm.Get(fieldName(i))
			if len(a) > maxAnswer || strings.IndexByte(a, 0) >= 0 {
				s.showStep(w, tok, l, fmt.Sprintf("An answer must be at most %d bytes and contain no NUL character.", maxAnswer))
				return
			}
			resps[i].Data = []byte(a)
		}
	}
	var err error
	if binary {
		// A browser cannot answer an agent's packet: the module sees a
		// conversation failure and the stack decides what follows.
		err = l.d.Fail(l.step.Seq, errors.New("a browser cannot answer a binary prompt"))
	} else {
		err = l.d.Answer(l.step.Seq, resps)
	}
	if err != nil && !errors.Is(err, pam.ErrNotWaiting) {
		// ErrNotWaiting means the dialog has ended (an idle timeout):
		// Next returns its final step.
		s.opt.Log.Printf("login %d: answer: %v", l.id, err)
	}
	l.pending = false
	s.advance(w, r, tok, l)
}

// advance waits for l's next step and shows it. The caller holds l.lock.
func (s *server) advance(w http.ResponseWriter, r *http.Request, tok string, l *login) {
	st, err := l.d.Next(r.Context())
	if err != nil {
		return // the browser went away; the step waits for the next request
	}
	l.seq++
	l.step = st
	l.pending = !st.Done
	if st.Done {
		s.forget(tok, l)
	}
	s.showStep(w, tok, l, "")
}

// showStep renders l's current step: a form for prompts, or the end.
func (s *server) showStep(w http.ResponseWriter, tok string, l *login, notice string) {
	st := l.step
	p := page{Step: l.seq, Idle: human(s.opt.Idle)}
	for _, m := range st.Info {
		p.Info = append(p.Info, field{Text: m.Text, Class: class(m.Style)})
	}
	if notice != "" {
		p.Info = append(p.Info, field{Text: notice, Class: "notice"})
	}
	if !st.Done {
		p.State, p.Title, p.Token = "prompt", "Log in", tok
		focus := true
		for i, m := range st.Prompts {
			f := field{Name: fieldName(i), Text: m.Text, Class: class(m.Style)}
			switch m.Style {
			case pam.PromptEchoOff:
				f.Input, f.Type, f.Complete = true, "password", "current-password"
			case pam.PromptEchoOn:
				f.Input, f.Type, f.Complete = true, "text", "off"
			case pam.BinaryPrompt:
				f.Text = "(a binary prompt that a browser cannot answer: sending the form ends the login)"
			}
			if f.Input {
				f.Focus, focus = focus, false
			}
			p.Fields = append(p.Fields, f)
		}
		s.render(w, http.StatusOK, p)
		return
	}
	p.Again = true
	code := http.StatusOK
	switch err := st.Err; {
	case err == nil:
		p.State, p.Title = "success", "Logged in"
		p.Message = fmt.Sprintf("Welcome, %s. PAM authenticated you and accepted your account.", l.user)
	case errors.Is(err, pam.ErrIdleTimeout):
		p.State, p.Title = "timeout", "Login timed out"
		p.Message = fmt.Sprintf("The login timed out: no answer came within %s, so it was abandoned.", human(s.opt.Idle))
	default:
		p.State, p.Title, code = "failure", "Login failed", http.StatusForbidden
		p.Message = "Login failed: " + reason(err) + "."
	}
	s.render(w, code, p)
}

// reason says why a login failed, in words fit for the person logging in.
func reason(err error) string {
	var pe *pam.Error
	switch pam.Classify(err) {
	case pam.OutcomeCredentials:
		// The same words for a wrong password and an unknown user: do
		// not tell who has an account.
		return pam.ErrAuth.Error()
	case pam.OutcomeAccount:
		if errors.As(err, &pe) {
			return pe.Code.Error() // such as "user account has expired"
		}
	case pam.OutcomeCanceled:
		return "the login was cancelled"
	case pam.OutcomeTemporary:
		return "the authentication service is unavailable; try again later"
	}
	return "internal error"
}

// human formats d as "60 seconds" rather than "1m0s".
func human(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + " seconds"
	}
	return d.String()
}

func fieldName(i int) string { return "a" + strconv.Itoa(i) }

func class(s pam.Style) string {
	if s == pam.ErrorMsg {
		return "error"
	}
	return ""
}

// page is what page.html shows.
type page struct {
	State   string // prompt, success, failure, timeout, unknown, busy or error
	Title   string
	Info    []field // messages shown first
	Message string  // the outcome
	Token   string
	Step    int
	Fields  []field
	Idle    string
	Again   bool // offer a new login
}

// field is one message of a batch: an input for a prompt, text otherwise.
type field struct {
	Name, Text, Class string
	Input, Focus      bool
	Type, Complete    string
}

func (s *server) render(w http.ResponseWriter, code int, p page) {
	var b bytes.Buffer
	if err := s.page.Execute(&b, p); err != nil {
		s.opt.Log.Printf("rendering: %v", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}
