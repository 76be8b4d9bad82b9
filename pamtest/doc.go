// Package pamtest builds hermetic PAM stacks for tests, so that a test can run
// the real libpam and real modules without reading or changing /etc.
//
// A Stack is a private configuration directory inside the test's temporary
// directory. Linux-PAM's pam_start_confdir reads service files from it instead
// of /etc/pam.d, and cwrap's pam_wrapper does the same for unmodified C
// programs (see Stack.WrapperEnv). Service files name modules by file name;
// the kit turns each name into an absolute path in the system module
// directory or in pam_wrapper's module directory, so nothing is resolved
// against /etc and a missing module fails the test with the name of the
// Debian package that ships it. Data files for modules (pam_userdb databases,
// pam_matrix password files, pam_exec scripts) are written next to the
// configuration directory, and CompileModule builds a PAM module from C
// source once per test binary. Host builds a small PAM application in C that
// runs operations against a stack and prints a transcript of the
// conversation and the results, for testing modules from outside the test
// process.
//
// The kit needs no privileges: everything it writes lives under
// testing.TB.TempDir and is removed when the test ends.
//
// A test reads as the stack it uses:
//
//	func TestLogin(t *testing.T) {
//		s := pamtest.New(t)
//		db := s.UserDB("users", map[string]string{"alice": "secret"})
//		svc := s.Service("login",
//			"auth    required pam_userdb.so db="+db+" crypt=none",
//			"account required pam_permit.so",
//		)
//		// Start a transaction for service svc with s.Dir() as the
//		// configuration directory and authenticate alice, for example
//		// with the host, whose transcript then holds "auth 0":
//		out, err := exec.Command(pamtest.Host(t), "-a", "secret", s.Dir(), svc, "alice", "auth").Output()
//	}
package pamtest
