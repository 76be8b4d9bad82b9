// Command sshgate is an SSH server whose login is the host's PAM stack: the
// keyboard-interactive method walks the SSH client through every prompt of
// the stack, one challenge per PAM conversation batch, and the password
// method answers the stack's password prompt. After the login it opens a PAM
// session, greets the user with the session's PAM environment, and closes
// the session again: it runs no shell, it is a gateway demo.
//
//	sshgate [-addr 127.0.0.1:2222] [-service NAME] [-confdir DIR] [-hostkey FILE]
//	        [-idle 60s] [-grace 2m] [-max 64]
//
// With neither -service nor -confdir it uses a demo stack embedded in the
// binary (user demo, password gopam-demo). Without -hostkey it generates an
// ed25519 host key into a temporary file for the run. It listens on loopback
// addresses only.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2222", "listen `address`; loopback only")
	confDir := flag.String("confdir", "", "read the PAM stack from `dir` instead of /etc/pam.d")
	service := flag.String("service", "", "PAM service `name` (default sshgate with -confdir); with neither flag, an embedded demo stack is used")
	hostKey := flag.String("hostkey", "", "host private key `file` (OpenSSH or PEM format); default: a new ed25519 key in a temporary file")
	idle := flag.Duration("idle", 60*time.Second, "end a login whose client does not answer a challenge, or open its session, within `duration`")
	grace := flag.Duration("grace", 2*time.Minute, "end a connection that has not authenticated within `duration`")
	maxTxns := flag.Int("max", 64, "bound on PAM transactions in flight (logins being checked or holding a session)")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *confDir, *service, *hostKey, options{Idle: *idle, Grace: *grace, MaxTxns: *maxTxns}); err != nil {
		log.Fatal(err)
	}
}

func run(addr, confDir, service, hostKey string, opt options) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	if confDir == "" && service == "" {
		tmp, err := os.MkdirTemp("", "sshgate-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if confDir, err = writeDemoStack(tmp); err != nil {
			return err
		}
		service = demoService
		log.Printf("demo stack in %s: log in as %q (the password is in README.md)", confDir, demoUser)
	} else if service == "" {
		service = demoService
	}
	signer, cleanup, err := loadHostKey(hostKey)
	if err != nil {
		return err
	}
	defer cleanup()
	log.Printf("host key %s", ssh.FingerprintSHA256(signer.PublicKey()))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	opt.Service, opt.ConfDir, opt.HostKey = service, confDir, signer
	s := newServer(opt)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	log.Printf("listening on %s (ssh -p %d USER@%s)", ln.Addr(), ln.Addr().(*net.TCPAddr).Port, ln.Addr().(*net.TCPAddr).IP)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.Close() // closes ln, so Serve returns
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// loadHostKey reads the host key from file, or generates an ed25519 key
// into a temporary file (removed by cleanup) when file is empty, so that a
// run can be pointed at with ssh-keygen -lf.
func loadHostKey(file string) (signer ssh.Signer, cleanup func(), err error) {
	cleanup = func() {}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, cleanup, err
		}
		signer, err = ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, cleanup, fmt.Errorf("host key %s: %w", file, err)
		}
		return signer, cleanup, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, cleanup, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "sshgate host key")
	if err != nil {
		return nil, cleanup, err
	}
	dir, err := os.MkdirTemp("", "sshgate-hostkey-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		cleanup()
		return nil, func() {}, err
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		cleanup()
		return nil, func() {}, err
	}
	log.Printf("generated host key in %s (removed on exit)", path)
	return signer, cleanup, nil
}

// checkLoopback refuses a listen address other machines could reach: the
// example is a demonstration, not a hardened bastion.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: sshgate listens on loopback addresses only (127.0.0.1, [::1] or localhost)", addr)
	}
	return nil
}
