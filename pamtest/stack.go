package pamtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
)

// Stack is a private PAM configuration directory (a confdir for
// pam_start_confdir, or a service directory for cwrap's pam_wrapper) plus a
// directory of data files that its modules read. Both live under the test's
// temporary directory and disappear when the test ends. Every method reports
// problems through the test with t.Fatalf, so a Stack's methods must be
// called from the test's own goroutine, like testing.TB.FailNow.
type Stack struct {
	t    testing.TB
	root string // the TempDir that holds everything below
	conf string // root/pam.d: the service files
	data string // root/data: files that modules and scripts read
}

// New returns an empty Stack in a fresh directory from t.TempDir. On
// OpenPAM, whose path form of a service name allows only the portable file
// name characters, a test name that gives other characters gets a directory
// from os.MkdirTemp instead, removed when the test ends.
func New(t testing.TB) *Stack {
	t.Helper()
	root := t.TempDir()
	if l, err := libpam.Load(); err == nil && l.CheckConfDir(filepath.Join(root, "pam.d"), "service") != nil {
		var err error
		if root, err = os.MkdirTemp("", "pamtest-"); err != nil {
			t.Fatalf("pamtest: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	s := &Stack{
		t:    t,
		root: root,
		conf: filepath.Join(root, "pam.d"),
		data: filepath.Join(root, "data"),
	}
	for _, d := range []string{s.conf, s.data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("pamtest: %v", err)
		}
	}
	return s
}

// Dir returns the absolute path of the configuration directory: the confdir
// argument for pam_start_confdir. It holds only the service files written by
// Service.
func (s *Stack) Dir() string { return s.conf }

// Service writes the service file Dir()/name with the given PAM
// configuration lines, replacing any earlier file of that name, and returns
// name. The name must be a non-empty lowercase file name without '/' (libpam
// lowercases service names before looking them up); anything else fails the
// test. "other" is the fallback service that libpam reads when a service has
// no file.
//
// Each line is one configuration line such as "auth required pam_permit.so"
// or "account [success=1 default=ignore] pam_succeed_if.so user = alice".
// Empty lines and lines starting with '#' are written unchanged. In other
// lines the module token is made absolute so that nothing resolves outside
// the stack:
//
//   - A module name without '/' becomes its path from ModulePath, so modules
//     of Linux-PAM and of cwrap's pam_wrapper (pam_matrix.so, pam_chatty.so,
//     pam_get_items.so, pam_set_items.so) can be named alike. A module that
//     is not installed fails the test with the Debian package that ships it,
//     except on a line whose type starts with '-', which libpam skips when the
//     module is missing and which is then written unchanged. To test a missing
//     module, name it by an absolute path. On OpenPAM, a module that only
//     Linux-PAM or cwrap's pam_wrapper ships skips the test instead (see
//     LinuxPAMOnly).
//   - The target of an include or substack control, and of Debian's
//     "@include", becomes a path in Dir() when it has no '/', because Debian's
//     libpam would otherwise read it from /etc/pam.d even under a confdir.
//   - Module paths containing '/' are written unchanged.
//   - On OpenPAM, an argument in Linux-PAM's brackets, such as
//     "[prompt=Password: ]", is written in OpenPAM's quotes instead.
//
// A line must not contain a newline; a malformed line (an unknown module
// type, a missing control or module) fails the test.
//
// On OpenPAM, which fills a facility a policy leaves out from the system's
// "other" policy, every facility the lines do not name (auth, account,
// password, session) gets a line "FACILITY required pam_deny.so", so that
// the stack is complete, reads nothing outside Dir() and denies what it
// does not define, as Linux-PAM does for a facility without modules.
func (s *Stack) Service(name string, lines ...string) string {
	s.t.Helper()
	if err := checkServiceName(name); err != nil {
		s.t.Fatalf("pamtest: %v", err)
	}
	var b strings.Builder
	defined := map[string]bool{}
	for i, line := range lines {
		out, err := s.rewriteLine(line)
		var missing *MissingError
		if errors.As(err, &missing) && linuxPAMPackage(missing.Package) {
			// On OpenPAM, which cannot load them, a module of Linux-PAM or
			// of cwrap's pam_wrapper means the test needs Linux-PAM.
			LinuxPAMOnly(s.t, missing.What)
		}
		if err != nil {
			s.t.Fatalf("pamtest: service %s, line %d %q: %v", name, i+1, line, err)
		}
		b.WriteString(out)
		b.WriteByte('\n')
		if ts, te := nextToken(line, 0); ts < te {
			defined[strings.TrimPrefix(strings.ToLower(line[ts:te]), "-")] = true
		}
	}
	if pam.Implementation() == "OpenPAM" {
		for _, f := range []string{"auth", "account", "password", "session"} {
			if defined[f] {
				continue
			}
			out, err := s.rewriteLine(f + " required pam_deny.so")
			if err != nil {
				s.t.Fatalf("pamtest: service %s: completing facility %s: %v", name, f, err)
			}
			b.WriteString(out + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(s.conf, name), []byte(b.String()), 0o644); err != nil {
		s.t.Fatalf("pamtest: writing service %s: %v", name, err)
	}
	return name
}

// checkServiceName reports why name cannot be the file name of a service
// that libpam would find, or nil if it can.
func checkServiceName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("service name %q is not a file name", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("service name %q must not contain '/' or NUL", name)
	case name != strings.ToLower(name):
		return fmt.Errorf("service name %q must be lowercase: libpam lowercases the name it looks up", name)
	}
	return nil
}

// rewriteLine returns line with its module or include target made absolute,
// as Service documents.
func (s *Stack) rewriteLine(line string) (string, error) {
	if strings.ContainsAny(line, "\n\r\x00") {
		return "", errors.New("a line must not contain a newline, carriage return or NUL")
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return line, nil
	}

	ts, te := nextToken(line, 0)
	typ := strings.ToLower(line[ts:te])
	if typ == "@include" {
		fs, fe := nextToken(line, te)
		if fs == fe {
			return "", errors.New("@include needs a service file name")
		}
		return line[:fs] + s.includePath(line[fs:fe]) + line[fe:], nil
	}
	optional := strings.HasPrefix(typ, "-")
	switch strings.TrimPrefix(typ, "-") {
	case "auth", "account", "password", "session":
	default:
		return "", fmt.Errorf("unknown module type %q (want auth, account, password or session)", line[ts:te])
	}

	cs, ce := nextToken(line, te)
	if cs == ce {
		return "", errors.New("missing control and module")
	}
	if line[cs] == '[' {
		j := strings.IndexByte(line[cs:], ']')
		if j < 0 {
			return "", errors.New("control starting with '[' has no closing ']'")
		}
		ce = cs + j + 1
	}
	control := strings.ToLower(line[cs:ce])

	ms, me := nextToken(line, ce)
	if ms == me {
		return "", errors.New("missing module")
	}
	mod := line[ms:me]
	if control == "include" || control == "substack" {
		return line[:ms] + s.includePath(mod) + line[me:], nil
	}
	rest := line[me:]
	if pam.Implementation() == "OpenPAM" {
		var err error
		if rest, err = openpamArgs(rest); err != nil {
			return "", err
		}
	}
	if strings.ContainsRune(mod, '/') {
		return line[:me] + rest, nil
	}
	p, err := ModulePath(mod)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return line, nil
		}
		return "", err
	}
	return line[:ms] + p + rest, nil
}

// openpamArgs rewrites module arguments for OpenPAM, which reads an
// argument holding blanks in quotes where Linux-PAM takes it in brackets:
// "[prompt=Password: ]" becomes "\"prompt=Password: \"" (Linux-PAM's "\]"
// is unescaped; an argument holding '"' gets single quotes).
func openpamArgs(rest string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '[' || i == 0 || (rest[i-1] != ' ' && rest[i-1] != '\t') {
			b.WriteByte(rest[i])
			continue
		}
		var arg strings.Builder
		j := i + 1
		for ; j < len(rest) && rest[j] != ']'; j++ {
			if rest[j] == '\\' && j+1 < len(rest) && rest[j+1] == ']' {
				j++
			}
			arg.WriteByte(rest[j])
		}
		if j == len(rest) {
			return "", errors.New("an argument starting with '[' has no closing ']'")
		}
		q := `"`
		if strings.ContainsRune(arg.String(), '"') {
			q = "'"
		}
		if strings.Contains(arg.String(), q) {
			return "", errors.New("an argument holds both kinds of quotes, which OpenPAM cannot read")
		}
		b.WriteString(q + arg.String() + q)
		i = j
	}
	return b.String(), nil
}

// includePath returns the path that an include, substack or @include target
// should have: a name without '/' is taken as a service file of this stack.
func (s *Stack) includePath(target string) string {
	if strings.ContainsRune(target, '/') {
		return target
	}
	return filepath.Join(s.conf, target)
}

// nextToken returns the bounds of the first blank-separated token of line at
// or after index i; start == end when there is none.
func nextToken(line string, i int) (start, end int) {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	start = i
	for i < len(line) && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	return start, i
}

// dataPath returns the absolute path for a data file called name, creating
// its parent directories, or fails the test if name is not a local relative
// path.
func (s *Stack) dataPath(name string) string {
	s.t.Helper()
	if name == "" || !filepath.IsLocal(name) {
		s.t.Fatalf("pamtest: data file name %q must be a relative path inside the stack", name)
	}
	p := filepath.Join(s.data, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatalf("pamtest: %v", err)
	}
	return p
}

// File writes a data file with the given content and returns its absolute
// path. Data files live in a directory of their own beside Dir(), never in
// the configuration directory; name is a relative path in it (parent
// directories are created) and an existing file is replaced. The file is
// readable by everyone, as modules running as another user may need.
func (s *Stack) File(name, content string) string {
	s.t.Helper()
	p := s.dataPath(name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatalf("pamtest: writing %s: %v", name, err)
	}
	return p
}

// Script writes an executable shell script as a data file (see File) and
// returns its absolute path, for modules such as pam_exec. A body that does
// not start with "#!" gets "#!/bin/sh\n" in front. Keep in mind that
// pam_exec runs scripts with the PAM environment only, so there is no PATH.
func (s *Stack) Script(name, body string) string {
	s.t.Helper()
	if !strings.HasPrefix(body, "#!") {
		body = "#!/bin/sh\n" + body
	}
	p := s.dataPath(name)
	if err := writeExecutable(p, []byte(body)); err != nil {
		s.t.Fatalf("pamtest: writing script %s: %v", name, err)
	}
	return p
}

// UserDB builds a Berkeley DB hash database for pam_userdb that maps each
// user name to its clear-text password, and returns its path without the
// ".db" suffix, which is the form pam_userdb's db= option wants (use it with
// crypt=none). A trailing ".db" in name is ignored; an existing database of
// that name is replaced. User names must be non-empty, and no name or
// password may contain a newline or NUL. The database is written by
// db5.3_load (or db_load) from Debian's db5.3-util; if neither is installed,
// the test fails naming that package.
func (s *Stack) UserDB(name string, users map[string]string) string {
	s.t.Helper()
	loader, err := dbLoader()
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	base := s.dataPath(strings.TrimSuffix(name, ".db"))
	db := base + ".db"
	if err := os.Remove(db); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.t.Fatalf("pamtest: %v", err)
	}

	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	// db_load -T reads alternating key and data lines, with backslash as
	// its escape character.
	escape := strings.NewReplacer(`\`, `\\`)
	var in strings.Builder
	for _, u := range names {
		pw := users[u]
		if u == "" || strings.ContainsAny(u, "\n\x00") || strings.ContainsAny(pw, "\n\x00") {
			s.t.Fatalf("pamtest: UserDB %s: user %q or its password is empty or contains a newline or NUL", name, u)
		}
		in.WriteString(escape.Replace(u))
		in.WriteByte('\n')
		in.WriteString(escape.Replace(pw))
		in.WriteByte('\n')
	}

	cmd := exec.Command(loader, "-T", "-t", "hash", db)
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("pamtest: %s -T -t hash %s: %v\n%s", loader, db, err, out)
	}
	return base
}

// dbLoader returns the path of a Berkeley DB loader program.
func dbLoader() (string, error) {
	for _, name := range []string{"db5.3_load", "db_load"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return lookProgram("db5.3_load", "db5.3-util")
}

// MatrixUser is one entry of a pam_matrix password file: User may
// authenticate with Password, and pam_matrix's account check lets User use
// Service only.
type MatrixUser struct {
	User, Password, Service string
}

// MatrixPasswd writes a password file for cwrap's pam_matrix, one
// "user:password:service" line per entry, and returns its absolute path,
// for pam_matrix's passdb= option or the PAM_MATRIX_PASSWD environment
// variable. No field may contain ':' or a newline, and User must not be
// empty; otherwise the test fails.
func (s *Stack) MatrixPasswd(name string, entries ...MatrixUser) string {
	s.t.Helper()
	var b strings.Builder
	for _, e := range entries {
		if e.User == "" || strings.ContainsAny(e.User+e.Password+e.Service, ":\n\x00") {
			s.t.Fatalf("pamtest: MatrixPasswd %s: entry %+v has an empty user or a ':', newline or NUL", name, e)
		}
		fmt.Fprintf(&b, "%s:%s:%s\n", e.User, e.Password, e.Service)
	}
	return s.File(name, b.String())
}

// WrapperEnv returns the environment entries that make an unmodified C
// program using plain pam_start read its service files from this stack
// through cwrap's pam_wrapper: LD_PRELOAD, PAM_WRAPPER=1 and
// PAM_WRAPPER_SERVICE_DIR. Append them to os.Environ() for an exec.Cmd.
// pam_wrapper copies the directory when the program starts, so write every
// service first. Any LD_PRELOAD already in the environment is overridden.
// If pam_wrapper is not installed the test fails naming Debian package
// libpam-wrapper.
func (s *Stack) WrapperEnv() []string {
	s.t.Helper()
	lib, err := WrapperLibrary()
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	return []string{
		"LD_PRELOAD=" + lib,
		"PAM_WRAPPER=1",
		"PAM_WRAPPER_SERVICE_DIR=" + s.conf,
	}
}

// LinuxPAMOnly skips the test, saying why, when the loaded libpam is
// OpenPAM: for a test that needs a module only Linux-PAM ships (pam_stress,
// pam_exec, pam_env, ...) or a feature only Linux-PAM has (the fail delay,
// binary prompts, removing a variable). It is the one place where gopam's
// suites decide that a test does not apply to OpenPAM, so that the OpenPAM
// pass can count what it skipped and why.
func LinuxPAMOnly(t testing.TB, why string) {
	t.Helper()
	if impl := pam.Implementation(); impl == "OpenPAM" {
		t.Skipf("needs Linux-PAM: %s (the loaded libpam is %s)", why, impl)
	}
}

// linuxPAMPackage reports whether pkg is the Debian package of Linux-PAM's
// modules or of cwrap's pam_wrapper, whose modules only Linux-PAM can load.
func linuxPAMPackage(pkg string) bool {
	return pkg == "libpam-modules" || pkg == "libpam-wrapper"
}
