// Command weblogin is a web login form that walks through every prompt of a
// PAM stack, one HTTP request per batch of prompts, with pam.StartDialog.
//
// Run it with `go run .` and open http://127.0.0.1:8080: by default it uses
// a demo stack embedded in the binary (user demo, password gopam-demo).
// -confdir and -service select a real stack instead:
//
//	weblogin [-addr 127.0.0.1:8080] [-idle 60s] [-confdir DIR] [-service NAME]
//
// It serves plain HTTP, so it listens on loopback addresses only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen `address`; loopback only, as the server speaks plain HTTP")
	confDir := flag.String("confdir", "", "read the PAM stack from `dir` instead of /etc/pam.d")
	service := flag.String("service", "", "PAM service `name` (default weblogin with -confdir); with neither flag, an embedded demo stack is used")
	idle := flag.Duration("idle", 60*time.Second, "abandon a login when no answer comes within `duration`")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *confDir, *service, *idle); err != nil {
		log.Fatal(err)
	}
}

func run(addr, confDir, service string, idle time.Duration) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	if confDir == "" && service == "" {
		tmp, err := os.MkdirTemp("", "weblogin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if confDir, err = writeDemoStack(tmp); err != nil {
			return err
		}
		service = demoService
		log.Printf("demo stack in %s: log in as %q (the password is in README.md and on the login page)", confDir, demoUser)
	} else if service == "" {
		service = demoService
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := newServer(options{Service: service, ConfDir: confDir, Idle: idle})
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("listening on http://%s/", ln.Addr())
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// checkLoopback refuses listen addresses that other machines could reach:
// passwords travel in plain HTTP.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-addr %q: listen on a loopback address (127.0.0.1, [::1] or localhost): this server speaks plain HTTP", addr)
}
