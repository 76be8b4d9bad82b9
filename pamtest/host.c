//go:build ignore

/*
 * (The constraint above makes the go tool skip this file, which it would
 * otherwise take for cgo source of package pamtest; the C compiler sees an
 * ordinary comment. host.go embeds the file instead.)
 *
 * pamtest's host: a small PAM application that starts one transaction with
 * pam_start_confdir, so that the service files come from a test's stack and
 * never from /etc/pam.d, runs the operations named on its command line and
 * prints a transcript of every conversation call and every result. The doc
 * comment of Host in host.go describes the command line and the output; the
 * two must change together.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#if __has_include(<security/openpam.h>)
#include <security/openpam.h>
#endif
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* The options; answers points into argv. */
static const char **answers;
static int nanswers, next_answer;
static int fail_code = -1, null_answers, bad_binary;
static size_t max_text = SIZE_MAX;

/* The operations, in the order of the documentation. */
static const char *const ops[] = {
	"auth", "setcred", "acct", "open_session", "close_session", "chauthtok", "env",
};

/*
 * print_escaped prints the first n bytes of s so that they stay on one
 * line: a backslash as \\, newline, tab and carriage return as \n, \t and
 * \r, other control bytes as \xHH, every other byte as itself.
 */
static void print_escaped(const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f)
				printf("\\x%02x", s[i]);
			else
				putchar(s[i]);
		}
	}
}

/* print_text prints the line "KIND LEN TEXT", or "KIND null". */
static void print_text(const char *kind, const char *text)
{
	size_t len;

	if (text == NULL) {
		printf("%s null\n", kind);
		return;
	}
	len = strlen(text);
	printf("%s %zu ", kind, len);
	print_escaped((const unsigned char *)text, len < max_text ? len : max_text);
	putchar('\n');
}

/*
 * take_answer returns a malloc'd answer for a text prompt: the next -a
 * option, else the next line of standard input without its newline. It
 * returns NULL when both are used up or memory is short.
 */
static char *take_answer(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (next_answer < nanswers)
		return strdup(answers[next_answer++]);
	len = getline(&line, &cap, stdin);
	if (len < 0) {
		free(line);
		return NULL;
	}
	if (len > 0 && line[len - 1] == '\n')
		line[len - 1] = '\0';
	return line;
}

#ifdef PAM_BINARY_PROMPT
/*
 * binary_answer prints a libpamc packet (u32 big-endian length including
 * the 5-byte header, u8 type, data) and returns the malloc'd answer packet
 * {0,0,0,9, 0x02, "pong"}, of type 0x03 with -B.
 */
static char *binary_answer(const unsigned char *in)
{
	uint32_t len = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
		       (uint32_t)in[2] << 8 | (uint32_t)in[3];
	size_t data = len > 5 ? len - 5 : 0;
	unsigned char *out;

	printf("binary %lu %u ", (unsigned long)len, in[4]);
	print_escaped(in + 5, data < max_text ? data : max_text);
	putchar('\n');
	out = malloc(9);
	if (out == NULL)
		return NULL;
	memcpy(out, "\0\0\0\x09", 4);
	out[4] = bad_binary ? 0x03 : 0x02;
	memcpy(out + 5, "pong", 4);
	return (char *)out;
}
#endif

static int conversation(int n, const struct pam_message **msg,
			struct pam_response **resp, void *appdata)
{
	struct pam_response *r;
	int i;

	(void)appdata;
	if (n <= 0 || n > PAM_MAX_NUM_MSG || msg == NULL) {
		printf("conv n=%d refused\n", n);
		return PAM_CONV_ERR;
	}
	printf("conv n=%d resp=%s\n", n, resp != NULL ? "set" : "null");
	if (fail_code >= 0)
		return fail_code;
	r = calloc((size_t)n, sizeof *r);
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		const struct pam_message *m = msg[i];

		if (m == NULL) {
			printf("message %d null\n", i);
			goto fail;
		}
		switch (m->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			print_text(m->msg_style == PAM_PROMPT_ECHO_ON ? "prompt-on" : "prompt-off", m->msg);
			if (resp == NULL)
				goto fail;
			if (null_answers)
				break;
			r[i].resp = take_answer();
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_TEXT_INFO:
			print_text("info", m->msg);
			break;
		case PAM_ERROR_MSG:
			print_text("error", m->msg);
			break;
#ifdef PAM_BINARY_PROMPT
		case PAM_BINARY_PROMPT:
			if (m->msg == NULL) {
				printf("binary null\n");
				goto fail;
			}
			if (resp == NULL)
				goto fail;
			r[i].resp = binary_answer((const unsigned char *)m->msg);
			if (r[i].resp == NULL)
				goto fail;
			break;
#endif
		default:
			printf("style %d\n", m->msg_style);
			goto fail;
		}
	}
	if (resp == NULL) {
		free(r);
		return PAM_SUCCESS;
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++)
		free(r[i].resp);
	free(r);
	return PAM_CONV_ERR;
}

static void print_env(pam_handle_t *pamh)
{
	char **env = pam_getenvlist(pamh);
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++) {
		fputs("env ", stdout);
		print_escaped((const unsigned char *)env[i], strlen(env[i]));
		putchar('\n');
		free(env[i]);
	}
	free(env);
}

/* run calls the PAM function for op, a valid operation other than env. */
static int run(pam_handle_t *pamh, const char *op)
{
	if (strcmp(op, "auth") == 0)
		return pam_authenticate(pamh, 0);
	if (strcmp(op, "setcred") == 0)
		return pam_setcred(pamh, PAM_ESTABLISH_CRED);
	if (strcmp(op, "acct") == 0)
		return pam_acct_mgmt(pamh, 0);
	if (strcmp(op, "open_session") == 0)
		return pam_open_session(pamh, 0);
	if (strcmp(op, "close_session") == 0)
		return pam_close_session(pamh, 0);
	return pam_chauthtok(pamh, 0);
}

static int known_op(const char *op)
{
	size_t i;

	for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(op, ops[i]) == 0)
			return 1;
	return 0;
}

/* parse_number stores the decimal number s in *v if it is in [0, max]. */
static int parse_number(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0' && *v <= max;
}

static int usage(const char *why, const char *arg)
{
	if (why != NULL)
		fprintf(stderr, "host: %s %s\n", why, arg);
	fprintf(stderr, "usage: host [-a ANSWER]... [-f CODE] [-m MAX] [-N] [-B] CONFDIR SERVICE USER [OP]...\n");
	free(answers);
	return 2;
}

/*
 * start_confdir is pam_start_confdir on Linux-PAM. OpenPAM has none: it
 * reads the policy CONFDIR/SERVICE (or CONFDIR/other) through the path form
 * of the service name, with the features that forbid or verify it switched
 * off, as gopam does (internal/libpam/openpam.go), and PAM_SERVICE then set
 * back to the plain name.
 */
static int start_confdir(const char *confdir, const char *service,
			 const char *user, const struct pam_conv *conv,
			 pam_handle_t **pamh)
{
#ifdef OPENPAM
	static const int features[] = {
		OPENPAM_RESTRICT_SERVICE_NAME, OPENPAM_VERIFY_POLICY_FILE,
		OPENPAM_VERIFY_MODULE_FILE, OPENPAM_FALLBACK_TO_OTHER,
	};
	char path[PATH_MAX];
	size_t i;
	int rc;

	if (snprintf(path, sizeof path, "%s/%s", confdir, service) >= (int)sizeof path)
		return PAM_BUF_ERR;
	if (access(path, F_OK) != 0 &&
	    (snprintf(path, sizeof path, "%s/other", confdir) >= (int)sizeof path ||
	     access(path, F_OK) != 0))
		return PAM_ABORT;
	for (i = 0; i < sizeof features / sizeof features[0]; i++)
		openpam_set_feature(features[i], 0);
	rc = pam_start(path, user, conv, pamh);
	if (rc == PAM_SUCCESS)
		rc = pam_set_item(*pamh, PAM_SERVICE, NULL);
	if (rc == PAM_SUCCESS)
		rc = pam_set_item(*pamh, PAM_SERVICE, service);
	return rc;
#else
	return pam_start_confdir(service, user, conv, confdir, pamh);
#endif
}

int main(int argc, char **argv)
{
	struct pam_conv conv = { conversation, NULL };
	pam_handle_t *pamh = NULL;
	unsigned long long v;
	int opt, rc, last = PAM_SUCCESS, i;

	answers = calloc((size_t)argc, sizeof *answers);
	if (answers == NULL) {
		perror("host");
		return 2;
	}
	while ((opt = getopt(argc, argv, "+a:f:m:NB")) != -1) {
		switch (opt) {
		case 'a':
			answers[nanswers++] = optarg;
			break;
		case 'f':
			if (!parse_number(optarg, INT_MAX, &v))
				return usage("bad -f code", optarg);
			fail_code = (int)v;
			break;
		case 'm':
			if (!parse_number(optarg, SIZE_MAX, &v))
				return usage("bad -m length", optarg);
			max_text = (size_t)v;
			break;
		case 'N':
			null_answers = 1;
			break;
		case 'B':
			bad_binary = 1;
			break;
		default:
			return usage(NULL, NULL);
		}
	}
	if (argc - optind < 3)
		return usage(NULL, NULL);
	for (i = optind + 3; i < argc; i++)
		if (!known_op(argv[i]))
			return usage("unknown operation", argv[i]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("tid %ld\n", (long)syscall(SYS_gettid));
	rc = start_confdir(argv[optind], argv[optind + 1], argv[optind + 2],
			   &conv, &pamh);
	printf("start %d\n", rc);
	if (rc != PAM_SUCCESS) {
		free(answers);
		return 1;
	}
	for (i = optind + 3; i < argc; i++) {
		if (strcmp(argv[i], "env") == 0) {
			print_env(pamh);
			continue;
		}
		rc = run(pamh, argv[i]);
		printf("%s %d\n", argv[i], rc);
		last = rc;
	}
	pam_end(pamh, last);
	free(answers);
	return 0;
}
