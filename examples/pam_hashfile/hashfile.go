// Command pam_hashfile is a PAM module written in Go with package
// github.com/gopam/pam/module: it checks passwords against a file of
// "user:bcrypt-hash[:expiry-date]" lines.
//
// Module arguments:
//
//	file=PATH        the password file (required)
//	use_first_pass   take the password an earlier module read, never prompt
//	try_first_pass   take it if there is one, else prompt
//
// Service functions:
//
//   - authenticate: the user's password against the bcrypt hash. Unknown
//     user: PAM_USER_UNKNOWN; wrong password: PAM_AUTH_ERR.
//   - acct_mgmt: PAM_ACCT_EXPIRED after the expiry date (YYYY-MM-DD, the
//     last day the account may log in, in local time).
//   - chauthtok: asks for the old password and the new one twice, in one
//     conversation batch, and rewrites the file atomically (a temporary
//     file in the same directory, fsync, rename, fsync of the directory),
//     keeping its mode and owner.
//   - open_session / close_session: set HASHFILE_USER and HASHFILE_SESSION
//     (open, then closed) in the PAM environment.
//   - setcred: succeeds; there are no credentials to set.
//
// A password file that others may write is refused (PAM_AUTHINFO_UNAVAIL,
// or PAM_AUTHTOK_ERR in chauthtok), with a line in the system log.
//
// Lines starting with '#' and blank lines are kept as they are. Make a hash
// with "echo PASSWORD | go run . hash" (or the helper: pam_hashfile-helper
// hash), or with htpasswd -nbBC 10 alice PASSWORD and keep the part after
// the colon.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/module"
	"golang.org/x/crypto/bcrypt"
)

type hashfile struct{}

func init() { module.Register(hashfile{}) }

// main runs the helper process; "hash" instead reads a password from
// standard input and prints its bcrypt hash, for writing the file.
func main() {
	if len(os.Args) == 2 && os.Args[1] == "hash" {
		pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && pw == "" {
			fmt.Fprintln(os.Stderr, "pam_hashfile hash: give the password on standard input")
			os.Exit(2)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(strings.TrimSuffix(pw, "\n")), bcrypt.DefaultCost)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pam_hashfile hash:", err)
			os.Exit(1)
		}
		fmt.Println(string(h))
		return
	}
	module.Main()
}

// entry is one user's line.
type entry struct {
	user, hash string
	expiry     string // "" for none
}

// errInsecure is a password file that others may write.
var errInsecure = errors.New("the password file is writable by others")

// passwdFile is the parsed file: its lines as read, and where each user is.
type passwdFile struct {
	path  string
	info  os.FileInfo
	lines []string
	users map[string]int // user -> index in lines
}

func readFile(path string) (*passwdFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Mode().Perm()&0o002 != 0 {
		return nil, errInsecure
	}
	p := &passwdFile{path: path, info: info, users: map[string]int{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		p.lines = append(p.lines, line)
		if e, ok := parseLine(line); ok {
			if _, dup := p.users[e.user]; !dup {
				p.users[e.user] = len(p.lines) - 1
			}
		}
	}
	return p, sc.Err()
}

func parseLine(line string) (entry, bool) {
	if line == "" || strings.HasPrefix(line, "#") {
		return entry{}, false
	}
	f := strings.Split(line, ":")
	if len(f) < 2 || len(f) > 3 || f[0] == "" {
		return entry{}, false
	}
	e := entry{user: f[0], hash: f[1]}
	if len(f) == 3 {
		e.expiry = f[2]
	}
	return e, true
}

func (p *passwdFile) lookup(user string) (entry, bool) {
	i, ok := p.users[user]
	if !ok {
		return entry{}, false
	}
	e, _ := parseLine(p.lines[i])
	return e, true
}

// open reads the file named by file=, reporting problems to the log.
func open(h *module.Handle, insecure pam.Code) (*passwdFile, error) {
	path, ok := h.Arg("file")
	if !ok || !filepath.IsAbs(path) {
		h.Syslog(module.LogErr, "pam_hashfile: file= must name the password file by an absolute path")
		return nil, pam.ErrService
	}
	p, err := readFile(path)
	if err != nil {
		h.Syslog(module.LogErr, "pam_hashfile: %s: %v", path, err)
		if errors.Is(err, errInsecure) {
			return nil, insecure
		}
		return nil, pam.ErrAuthInfoUnavail
	}
	return p, nil
}

// userFile returns the user (asking for it if need be) and the parsed
// password file; insecure is the code for a file others may write.
func userFile(h *module.Handle, insecure pam.Code) (string, *passwdFile, error) {
	user, err := h.User("")
	if err != nil {
		return "", nil, err
	}
	p, err := open(h, insecure)
	if err != nil {
		return "", nil, err
	}
	return user, p, nil
}

// dummyHash keeps the time of a check for an unknown user close to that of
// a known one. It is made on first use, not when the library loads.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("pam_hashfile"), bcrypt.DefaultCost)
	return h
})

func (hashfile) Authenticate(h *module.Handle) error {
	user, p, err := userFile(h, pam.ErrAuthInfoUnavail)
	if err != nil {
		return err
	}
	tok, err := h.AuthTok("")
	if err != nil {
		return err
	}
	defer clear(tok)
	if len(tok) == 0 && h.Flags()&module.DisallowNullAuthTok != 0 {
		return pam.ErrAuth
	}
	e, known := p.lookup(user)
	hash := []byte(e.hash)
	if !known {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword(hash, tok) != nil || !known {
		if !known {
			return pam.ErrUserUnknown
		}
		h.Syslog(module.LogNotice, "pam_hashfile: wrong password for %q", user)
		return pam.ErrAuth
	}
	return nil
}

func (hashfile) SetCred(*module.Handle) error { return nil }

// expired reports whether the day after the expiry date has begun.
func expired(expiry string, now time.Time) (bool, error) {
	if expiry == "" {
		return false, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, expiry, time.Local)
	if err != nil {
		return false, err
	}
	return !now.Before(d.AddDate(0, 0, 1)), nil
}

func (hashfile) AcctMgmt(h *module.Handle) error {
	user, p, err := userFile(h, pam.ErrAuthInfoUnavail)
	if err != nil {
		return err
	}
	e, ok := p.lookup(user)
	if !ok {
		return pam.ErrUserUnknown
	}
	gone, err := expired(e.expiry, time.Now())
	if err != nil {
		h.Syslog(module.LogErr, "pam_hashfile: bad expiry date for %q: %v", user, err)
		return pam.ErrAcctExpired
	}
	if gone {
		h.Error("Your account has expired.")
		return pam.ErrAcctExpired
	}
	return nil
}

func (hashfile) ChangeAuthTok(h *module.Handle) error {
	user, p, err := userFile(h, pam.ErrAuthTok)
	if errors.Is(err, pam.ErrAuthInfoUnavail) {
		return pam.ErrAuthTok
	}
	if err != nil {
		return err
	}
	e, ok := p.lookup(user)
	if !ok {
		return pam.ErrUserUnknown
	}
	if h.Flags()&module.PrelimCheck != 0 {
		return nil
	}
	r, err := h.Converse(
		pam.Message{Style: pam.PromptEchoOff, Text: "Current password: "},
		pam.Message{Style: pam.PromptEchoOff, Text: "New password: "},
		pam.Message{Style: pam.PromptEchoOff, Text: "Retype new password: "},
	)
	if err != nil {
		return err
	}
	defer func() {
		for _, x := range r {
			clear(x.Data)
		}
	}()
	if bcrypt.CompareHashAndPassword([]byte(e.hash), r[0].Data) != nil {
		h.Error("Wrong password.")
		return pam.ErrAuthTok
	}
	if len(r[1].Data) == 0 || !bytes.Equal(r[1].Data, r[2].Data) {
		h.Error("The new passwords do not match.")
		return pam.ErrAuthTok
	}
	hash, err := bcrypt.GenerateFromPassword(r[1].Data, bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hashing the new password: %w", err)
	}
	line := e.user + ":" + string(hash)
	if e.expiry != "" {
		line += ":" + e.expiry
	}
	p.lines[p.users[user]] = line
	if err := p.rewrite(nil); err != nil {
		h.Syslog(module.LogErr, "pam_hashfile: rewriting %s: %v", p.path, err)
		return pam.ErrAuthTok
	}
	return h.SetAuthTok(r[1].Data)
}

// rewrite replaces the file with its lines, atomically: the new content
// goes to a temporary file in the same directory, which is synced and
// renamed over the old one, and the directory is synced. A crash at any
// point leaves either the old file or the new one, complete. beforeRename,
// if not nil, runs just before the rename (tests use it to fail there).
func (p *passwdFile) rewrite(beforeRename func() error) (err error) {
	dir := filepath.Dir(p.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p.path)+".new-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(p.info.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := p.info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(tmp)
	for _, l := range p.lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if beforeRename != nil {
		if err := beforeRename(); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed; only the directory's sync is lost
	}
	defer d.Close()
	d.Sync()
	return nil
}

func (hashfile) OpenSession(h *module.Handle) error {
	user, err := h.User("")
	if err != nil {
		return err
	}
	if err := h.Setenv("HASHFILE_USER", user); err != nil {
		return err
	}
	return h.Setenv("HASHFILE_SESSION", "open")
}

func (hashfile) CloseSession(h *module.Handle) error {
	return h.Setenv("HASHFILE_SESSION", "closed")
}
