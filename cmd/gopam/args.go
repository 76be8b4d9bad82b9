package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
)

// usageError is bad input on the command line: it is reported as one line on
// standard error and the program exits with status 2 before any PAM call.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef formats a usage error. The strings among args come from the command
// line: %q writes one as esc.Quote does and %s as esc.Name does (a plain name
// as it is, anything else quoted), each cut after 256 bytes, so that the
// message is one bounded line.
func usagef(format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = untrusted(s)
		}
	}
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// untrusted is a string from the command line in a message.
type untrusted string

func (u untrusted) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, esc.Quote(string(u)))
		return
	}
	io.WriteString(f, esc.Name(string(u)))
}

// options is the parsed command line.
type options struct {
	help     bool
	verbose  bool
	json     bool
	printEnv bool
	timeout  time.Duration

	demo      bool
	user      string // demo: --user
	userSet   bool
	moduleDir string // demo: --module-dir

	confDir string
	items   []itemArg
	env     []envArg

	// answers are the sources of scripted answers in command-line order;
	// scripted records that --answer or --answers-file was given at all, so
	// that an empty answers file still means "never ask the terminal".
	answers  []answerSource
	scripted bool

	service string
	pamUser string
	ops     []operation
}

// answerSource is one --answer (text) or one --answers-file, whose lines
// pam.Lines hands out as the prompts come (data is the file's contents, read
// when the arguments are checked and wiped at exit).
type answerSource struct {
	text  []byte
	lines *pam.LineConversation
	data  []byte
}

// itemArg is one -I item=value.
type itemArg struct {
	name  string // as pamtester spells it: tty, rhost, ...
	item  pam.Item
	value string
}

// envArg is one -E NAME=value, or -E NAME to remove NAME.
type envArg struct {
	name  string
	value string
	unset bool
}

// itemNames are the items -I accepts, under pamtester's names.
var itemNames = map[string]pam.Item{
	"service": pam.ItemService,
	"user":    pam.ItemUser,
	"prompt":  pam.ItemUserPrompt,
	"tty":     pam.ItemTTY,
	"ruser":   pam.ItemRUser,
	"rhost":   pam.ItemRHost,
}

// valueOptions are the long options that take a value, as "--name value" or
// "--name=value".
var valueOptions = map[string]bool{
	"--confdir": true, "--answer": true, "--answers-file": true, "--timeout": true,
	"--user": true, "--module-dir": true, "--item": true,
}

// parseArgs parses the command line (without the program name). stdin is
// read only for "--answers-file -".
func parseArgs(args []string, stdin *os.File) (*options, error) {
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, usagef("argument %d contains a NUL byte", i+1)
		}
	}
	o := &options{}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		// -I and -E take their value attached (-Itty=x) or as the next
		// argument (-I tty=x), as pamtester's do.
		if len(a) >= 2 && (a[1] == 'I' || a[1] == 'E') && !strings.HasPrefix(a, "--") {
			v := a[2:]
			if v == "" {
				if i+1 >= len(args) {
					return nil, usagef("option %s needs a value", a)
				}
				i++
				v = args[i]
			}
			if a[1] == 'I' {
				if err := o.addItem(v); err != nil {
					return nil, err
				}
			} else if err := o.addEnv(v); err != nil {
				return nil, err
			}
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		if valueOptions[name] && !hasValue {
			if i+1 >= len(args) {
				return nil, usagef("option %s needs a value", name)
			}
			i++
			value, hasValue = args[i], true
		}
		if !valueOptions[name] && hasValue {
			return nil, usagef("option %s takes no value", name)
		}
		switch name {
		case "-h", "--help", "-help":
			o.help = true
		case "-v", "--verbose":
			o.verbose = true
		case "--json":
			o.json = true
		case "--env":
			o.printEnv = true
		case "--confdir":
			if value == "" {
				return nil, usagef("--confdir needs a directory")
			}
			o.confDir = value
		case "--answer":
			o.answers = append(o.answers, answerSource{text: []byte(value)})
			o.scripted = true
		case "--answers-file":
			if err := o.readAnswers(value, stdin); err != nil {
				return nil, err
			}
		case "--timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return nil, usagef("--timeout %q: want a positive duration such as 30s or 1m", value)
			}
			o.timeout = d
		case "--user":
			o.user, o.userSet = value, true
		case "--module-dir":
			o.moduleDir = value
		case "--item":
			if err := o.addItem(value); err != nil {
				return nil, err
			}
		default:
			return nil, usagef("unknown option %s", name)
		}
	}
	if o.help {
		return o, nil
	}
	if len(positional) == 1 && positional[0] == "demo" {
		o.demo = true
		if o.confDir != "" {
			return nil, usagef("demo writes its own stack; --confdir cannot be used with it")
		}
		if o.userSet && o.user == "" {
			return nil, usagef("--user needs a user name")
		}
		return o, nil
	}
	if o.userSet {
		return nil, usagef("--user is an option of gopam demo; give the user as the second argument")
	}
	if o.moduleDir != "" {
		return nil, usagef("--module-dir is an option of gopam demo")
	}
	if len(positional) < 3 {
		return nil, usagef("usage: gopam [options] SERVICE USER OPERATION... (gopam --help explains)")
	}
	o.service, o.pamUser = positional[0], positional[1]
	if o.service == "" {
		return nil, usagef("the service name is empty")
	}
	for _, spec := range positional[2:] {
		op, err := parseOperation(spec)
		if err != nil {
			return nil, err
		}
		o.ops = append(o.ops, op)
	}
	if o.confDir != "" {
		fi, err := os.Stat(o.confDir)
		if err != nil {
			return nil, usagef("--confdir %s: no such directory", o.confDir)
		}
		if !fi.IsDir() {
			return nil, usagef("--confdir %s: not a directory", o.confDir)
		}
	}
	return o, nil
}

func (o *options) addItem(spec string) error {
	name, value, ok := strings.Cut(spec, "=")
	if !ok {
		return usagef("-I %q: want item=value", spec)
	}
	it, known := itemNames[strings.ToLower(name)]
	if !known {
		return usagef("-I %q: unknown item %q (known: service, user, prompt, tty, ruser, rhost)", spec, name)
	}
	o.items = append(o.items, itemArg{name: strings.ToLower(name), item: it, value: value})
	return nil
}

func (o *options) addEnv(spec string) error {
	name, value, ok := strings.Cut(spec, "=")
	if name == "" {
		return usagef("-E %q: the variable name is empty", spec)
	}
	o.env = append(o.env, envArg{name: name, value: value, unset: !ok})
	return nil
}

// readAnswers reads the answers file ("-" is standard input), so that a
// missing file or a NUL byte is bad input found before anything runs. Its
// lines are handed out one per prompt by pam.Lines: the line ends are not
// part of the answers, and a final line without one counts.
func (o *options) readAnswers(file string, stdin *os.File) error {
	var data []byte
	var err error
	if file == "-" {
		var b bytes.Buffer
		_, err = b.ReadFrom(stdin)
		data = b.Bytes()
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		clear(data)
		return usagef("--answers-file: %v", err)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		clear(data)
		return usagef("--answers-file %s: contains a NUL byte", file)
	}
	o.scripted = true
	o.answers = append(o.answers, answerSource{lines: pam.Lines(bytes.NewReader(data), nil), data: data})
	return nil
}
