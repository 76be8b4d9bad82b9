package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
	"golang.org/x/crypto/ssh"
)

// options configure a server.
type options struct {
	// Service and ConfDir select the PAM stack, as in pam.Config.
	Service, ConfDir string
	// HostKey is the server's host key.
	HostKey ssh.Signer
	// Idle bounds how long the server waits for the client's answer to one
	// challenge, and for the session request after the login.
	Idle time.Duration
	// Grace bounds how long a connection may take to authenticate.
	Grace time.Duration
	// MaxTxns bounds the PAM transactions in flight: a login being checked,
	// or an authenticated one waiting for or holding its session. A login
	// waits up to Idle for a free slot.
	MaxTxns int
	// Log receives one line per connection, login and session event. Answers
	// and passwords are never logged; untrusted text is quoted.
	Log *log.Logger
}

// maxAnswer is PAM_MAX_RESP_SIZE, the longest answer a module expects.
const maxAnswer = 512

// Why a connection ended, as the cause of its context.
var (
	errDisconnected = errors.New("the client disconnected")
	errIdle         = errors.New("the client did not answer within the idle timeout")
	errGrace        = errors.New("the client did not authenticate within the login grace time")
	errShutdown     = errors.New("the server is shutting down")
	errDone         = errors.New("the connection ended")
	errBusy         = errors.New("too many PAM transactions in flight")
)

// server accepts SSH connections and authenticates them with PAM.
type server struct {
	opt    options
	slots  chan struct{} // one token per transaction in flight
	ctx    context.Context
	cancel context.CancelCauseFunc
	conns  sync.WaitGroup

	mu       sync.Mutex
	ln       net.Listener
	inFlight int           // PAM handles started and not yet closed
	changed  chan struct{} // closed and replaced when inFlight changes
	lastID   uint64
}

func newServer(opt options) *server {
	if opt.Idle <= 0 {
		opt.Idle = time.Minute
	}
	if opt.Grace <= 0 {
		opt.Grace = 2 * time.Minute
	}
	if opt.MaxTxns <= 0 {
		opt.MaxTxns = 64
	}
	if opt.Log == nil {
		opt.Log = log.Default()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &server{opt: opt, slots: make(chan struct{}, opt.MaxTxns), ctx: ctx, cancel: cancel, changed: make(chan struct{})}
}

// Serve accepts connections on ln until Close. It returns an error
// matching net.ErrClosed after Close.
func (s *server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	if s.ctx.Err() != nil {
		ln.Close()
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.serveConn(nc)
		}()
	}
}

// Close stops accepting, ends every connection (cancelling its PAM
// transaction) and waits until their handles are closed.
func (s *server) Close() {
	s.cancel(errShutdown)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	s.conns.Wait()
}

// InFlight returns the number of PAM transactions in flight and a channel
// that is closed when the number changes.
func (s *server) InFlight() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight, s.changed
}

// acquire waits for a transaction slot, up to the idle timeout, and counts
// the transaction in flight. release gives the slot back.
// waiting is called when no slot is free at once.
func (s *server) acquire(ctx context.Context, waiting func()) (release func() int, err error) {
	select {
	case s.slots <- struct{}{}:
	default:
		waiting()
		t := time.NewTimer(s.opt.Idle)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-t.C:
			return nil, errBusy
		}
	}
	s.addInFlight(1)
	var once sync.Once
	return func() (n int) {
		n = -1
		once.Do(func() {
			n = s.addInFlight(-1)
			<-s.slots
		})
		return n
	}, nil
}

func (s *server) addInFlight(d int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight += d
	close(s.changed)
	s.changed = make(chan struct{})
	return s.inFlight
}

// conn is one client connection.
type conn struct {
	s      *server
	id     uint64
	remote string // the client's address, for the log
	rhost  string // the client's IP address: PAM_RHOST
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu  sync.Mutex
	txn *txn // the authenticated transaction, until its session takes it
}

// txn is an authenticated PAM transaction.
type txn struct {
	h       *pam.Handle
	user    string // PAM_USER after the login
	release func() int
}

func (c *conn) logf(format string, args ...any) {
	c.s.opt.Log.Printf("conn %d: "+format, append([]any{c.id}, args...)...)
}

// readWatcher cancels the connection's context when a read fails: the
// transport reads all the time, so a client that goes away is noticed even
// while a module runs, and the PAM call in progress is cancelled.
type readWatcher struct {
	net.Conn
	cancel context.CancelCauseFunc
}

func (w readWatcher) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.cancel(errDisconnected)
	}
	return n, err
}

func (s *server) serveConn(nc net.Conn) {
	s.mu.Lock()
	s.lastID++
	id := s.lastID
	s.mu.Unlock()
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(errDone)
	// However the connection ends (disconnect, idle timeout, grace time,
	// shutdown), closing it unblocks a challenge waiting for the client.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	c := &conn{s: s, id: id, remote: nc.RemoteAddr().String(), ctx: ctx, cancel: cancel}
	c.rhost, _, _ = net.SplitHostPort(c.remote)
	c.logf("connection from %s", c.remote)

	grace := time.AfterFunc(s.opt.Grace, func() { cancel(errGrace) })
	_, chans, reqs, err := ssh.NewServerConn(readWatcher{nc, cancel}, s.config(c))
	grace.Stop()
	if err != nil {
		c.endTxn()
		c.logf("no login: %s", describe(err, ctx))
		return
	}
	defer c.endTxn()
	go ssh.DiscardRequests(reqs)
	// The session must be asked for within the idle timeout: an
	// authenticated transaction holds a slot.
	idle := time.AfterFunc(s.opt.Idle, func() { cancel(errIdle) })
	var sessions sync.WaitGroup
	started := false
	for nch := range chans {
		if nch.ChannelType() != "session" || started {
			nch.Reject(ssh.Prohibited, "sshgate serves one session per connection and no forwarding")
			continue
		}
		started = true
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			c.session(nch, idle)
			// The client disconnects once its channel is closed; one
			// that does not is closed after the idle timeout.
			time.AfterFunc(s.opt.Idle, func() { cancel(errDone) })
		}()
	}
	sessions.Wait()
	idle.Stop()
	if err := context.Cause(ctx); err != nil && err != errDone {
		c.logf("connection ended: %s", err)
	}
}

// config returns the SSH server configuration for c: its callbacks run the
// PAM transaction of c's login.
func (s *server) config(c *conn) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		KeyboardInteractiveCallback: func(md ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			k := &challenger{c: c, ask: challenge}
			return c.login(md.User(), "keyboard-interactive", k, k)
		},
		PasswordCallback: func(md ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			p := &passwordConv{password: password}
			defer p.wipe()
			return c.login(md.User(), "password", p, nil)
		},
		ServerVersion: "SSH-2.0-gopam-sshgate",
	}
	cfg.AddHostKey(s.opt.HostKey)
	return cfg
}

// login runs the PAM transaction of one authentication attempt: authenticate
// and acct_mgmt and, for keyboard-interactive (k not nil), chauthtok when the
// password has expired. On success the transaction waits for the session.
func (c *conn) login(user, method string, conv pam.Conversation, k *challenger) (*ssh.Permissions, error) {
	who := esc.Quote(user)
	if user == "" {
		// pam.Start would refuse it too (pam.ErrUserRequired: an empty
		// User with a conversation of the program's own); refusing it
		// here takes no transaction slot.
		c.logf("%s: refused an empty user name", method)
		return nil, errors.New("no user name")
	}
	release, err := c.s.acquire(c.ctx, func() {
		c.logf("%s for %s: waiting for a transaction slot", method, who)
	})
	if err != nil {
		c.logf("%s for %s: no transaction slot: %s", method, who, err)
		return nil, err
	}
	n, _ := c.s.InFlight()
	c.logf("%s for %s from %s: transaction started (%d in flight)", method, who, c.remote, n)
	h, err := pam.StartContext(c.ctx, pam.Config{
		Service: c.s.opt.Service,
		ConfDir: c.s.opt.ConfDir,
		User:    user,
		RHost:   c.rhost,
		Conv:    conv,
	})
	if err == nil {
		err = h.Authenticate(c.ctx, 0)
		if err == nil {
			err = h.AcctMgmt(c.ctx, 0)
			if errors.Is(err, pam.ErrNewAuthTokReqd) && k != nil {
				c.logf("%s for %s: the password has expired: changing it", method, who)
				err = h.ChangeAuthTok(c.ctx, pam.ChangeExpiredAuthTok)
			}
		}
		if k != nil {
			k.flush(c.ctx)
		}
		if err != nil {
			h.Close()
		}
	}
	if err != nil {
		n := release()
		c.logf("%s for %s failed: %s (%d in flight)", method, who, describe(err, c.ctx), n)
		return nil, errors.New("PAM refused the login")
	}
	t := &txn{h: h, user: user, release: release}
	if u, err := h.Item(pam.ItemUser); err == nil && u != "" {
		t.user = u // a module may map the name
	}
	c.mu.Lock()
	old := c.txn
	c.txn = t
	c.mu.Unlock()
	if old != nil { // not expected: a successful login ends authentication
		c.finish(old)
	}
	c.logf("%s for %s: logged in as %s", method, who, esc.Quote(t.user))
	return &ssh.Permissions{}, nil
}

// takeTxn hands the authenticated transaction to the session.
func (c *conn) takeTxn() *txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.txn
	c.txn = nil
	return t
}

// endTxn ends a transaction that no session took.
func (c *conn) endTxn() {
	if t := c.takeTxn(); t != nil {
		c.finish(t)
		c.logf("closed the transaction of %s: no session was started", esc.Quote(t.user))
	}
}

// finish closes t's handle and gives its slot back.
func (c *conn) finish(t *txn) {
	if err := t.h.Close(); err != nil {
		c.logf("closing the transaction of %s: %s", esc.Quote(t.user), describe(err, c.ctx))
	}
	n := t.release()
	c.logf("transaction of %s ended (%d in flight)", esc.Quote(t.user), n)
}

// describe formats err for the log: the PAM code's name first when err is a
// PAM failure, then the error text quoted, then why the connection ended
// when it has.
func describe(err error, ctx context.Context) string {
	s := esc.Quote(err.Error())
	var pe *pam.Error
	if errors.As(err, &pe) {
		s = pe.Code.Name() + " " + s
	}
	if cause := context.Cause(ctx); cause != nil && cause != errDone {
		s += " (" + cause.Error() + ")"
	}
	return s
}

// challenger is the PAM conversation of a keyboard-interactive login: each
// batch of prompts becomes one challenge, its echo-off and echo-on prompts
// the questions. TextInfo and ErrorMsg messages become the instruction text
// of the challenge that carries the next prompts, or of a challenge with no
// questions when the operations end first.
//
// A module that gopam abandoned when the context ended may still call the
// conversation later: mu serialises it with flush, and the context, checked
// before every challenge, keeps it from the client.
type challenger struct {
	c       *conn
	ask     ssh.KeyboardInteractiveChallenge
	mu      sync.Mutex
	pending []string // messages not shown yet
}

func (k *challenger) Converse(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var questions []string
	var echos []bool
	var at []int // the index in msgs of each question
	info := k.pending
	for i, m := range msgs {
		switch m.Style {
		case pam.PromptEchoOff, pam.PromptEchoOn:
			questions = append(questions, message(m.Text))
			echos = append(echos, m.Style == pam.PromptEchoOn)
			at = append(at, i)
		case pam.TextInfo, pam.ErrorMsg:
			info = append(info, message(m.Text))
		default:
			return nil, fmt.Errorf("an SSH client cannot answer a %v message", m.Style)
		}
	}
	resps := make([]pam.Response, len(msgs))
	if len(questions) == 0 {
		k.pending = info
		return resps, nil
	}
	k.pending = nil
	answers, err := k.challenge(ctx, info, questions, echos)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		a := answers[j]
		if len(a) > maxAnswer {
			clearResponses(resps)
			return nil, fmt.Errorf("answer %d is %d bytes long, more than %d", j+1, len(a), maxAnswer)
		}
		resps[i].Data = []byte(a) // gopam wipes it once libpam has it
	}
	return resps, nil
}

// challenge sends one challenge and waits, up to the idle timeout, for its
// answers. When the client goes away or stays silent, the connection's
// context ends, the connection is closed and the challenge fails with the
// reason.
func (k *challenger) challenge(ctx context.Context, info, questions []string, echos []bool) ([]string, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	instruction := ""
	for i, m := range info {
		if i > 0 {
			instruction += "\n"
		}
		instruction += m
	}
	t := time.AfterFunc(k.c.s.opt.Idle, func() { k.c.cancel(errIdle) })
	answers, err := k.ask("", instruction, questions, echos)
	t.Stop()
	if cause := context.Cause(k.c.ctx); cause != nil {
		return nil, cause
	}
	if err != nil {
		return nil, fmt.Errorf("keyboard-interactive challenge: %w", err)
	}
	if len(answers) != len(questions) {
		return nil, fmt.Errorf("keyboard-interactive challenge: %d answers to %d questions", len(answers), len(questions))
	}
	return answers, nil
}

// flush shows the messages the operations sent after their last prompt, in
// a challenge with no questions.
func (k *challenger) flush(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.pending) > 0 {
		info := k.pending
		k.pending = nil
		k.challenge(ctx, info, nil, nil)
	}
}

// passwordConv is the conversation of the password method: the password
// answers the stack's first echo-off prompt; any other prompt fails, as the
// method has no way to ask. Messages are dropped: the method cannot show
// them.
type passwordConv struct {
	mu       sync.Mutex // a late call from an abandoned module races with wipe
	password []byte     // nil once wiped
	used     bool
}

// wipe clears the password when the login has ended.
func (p *passwordConv) wipe() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.password)
	p.password = nil
}

var errPasswordOnly = errors.New("the password method answers one password prompt only; use keyboard-interactive")

func (p *passwordConv) Converse(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resps := make([]pam.Response, len(msgs))
	for i, m := range msgs {
		switch {
		case m.Style == pam.TextInfo || m.Style == pam.ErrorMsg:
		case m.Style == pam.PromptEchoOff && !p.used && p.password != nil:
			p.used = true
			resps[i].Data = append([]byte(nil), p.password...)
		default:
			clearResponses(resps)
			return nil, errPasswordOnly
		}
	}
	return resps, nil
}

func clearResponses(rs []pam.Response) {
	for _, r := range rs {
		clear(r.Data)
	}
}
