//go:build ignore

/*
 * (The constraint above makes the go tool skip this file, which it would
 * otherwise take for cgo source of package testmodule; the C compiler sees
 * an ordinary comment. testmodule.go embeds the file instead.)
 *
 * pam_gotest: a PAM module whose behaviour gopam's tests choose through
 * module arguments, so that a test can make libpam call the Go library's
 * conversation in exactly the way it wants to check. It is a test tool:
 * never install it in a real PAM configuration. It builds against Linux-PAM
 * and OpenPAM; on OpenPAM the binary step gives PAM_SERVICE_ERR, the ret=
 * names are OpenPAM's (its extra codes domain_unknown, bad_handle,
 * bad_feature and bad_constant too, no conv_again or incomplete), and
 * setenv= needs the NAME=VALUE form.
 *
 * All six entry points behave alike. Every argument is optional and they
 * combine; the steps run in the order listed here, and a failing step ends
 * the call with its code.
 *
 *   tidfile=/abs/path  On entry, append "<op> <tid>\n" to the file, where op
 *                      is auth, setcred, acct, open_session, close_session or
 *                      chauthtok and tid is the kernel thread id of the
 *                      calling thread. The line is written with one write()
 *                      before any other step, including the sleep. A file
 *                      that cannot be written gives PAM_SYSTEM_ERR.
 *   waitfile=/abs/path Wait until the file exists (checked every
 *                      millisecond, for at most ten minutes, after which
 *                      the call gives PAM_SYSTEM_ERR), so that a test
 *                      decides when the module goes on, with no clock.
 *   sleepms=N          Sleep N milliseconds (nanosleep, resumed after
 *                      signals) before every step below. 0 <= N <= 600000.
 *   setenv=NAME=VALUE  pam_putenv("NAME=VALUE"); may be repeated, applied in
 *                      order. Any pam_putenv form works ("NAME" unsets). A
 *                      pam_putenv failure is returned.
 *   nmsg=N             One conversation call with N PAM_TEXT_INFO messages
 *                      "msg 0", "msg 1", ... 0 <= N <= 4096; N = 0 or N > 32
 *                      checks that the application refuses bad counts (for
 *                      N = 0 msg still points to a valid array).
 *   nullresp           One conversation call with a PAM_TEXT_INFO message
 *                      "nullresp" and resp == NULL, as pam_matrix does.
 *   bigmsg=N           One PAM_TEXT_INFO message of exactly N 'x' bytes
 *                      (plus the NUL). 0 <= N <= 16777216.
 *   binary             One PAM_BINARY_PROMPT message whose msg points to a
 *                      libpamc packet: u32 big-endian total length
 *                      including the 5-byte header, u8 type 0x01, data
 *                      "ping". The answer's resp must point to a packet of
 *                      type 0x02 with data "pong"; anything else, a NULL
 *                      resp included, gives PAM_AUTH_ERR. The answer is read
 *                      as a packet, so a shorter allocation is read past.
 *   prompt=TEXT        One PAM_PROMPT_ECHO_OFF prompt TEXT.
 *   echoprompt=TEXT    One PAM_PROMPT_ECHO_ON prompt TEXT. At most one of
 *                      prompt= and echoprompt= per module line; list the
 *                      module several times for several prompts. A NULL
 *                      answer gives PAM_AUTH_ERR.
 *   expect=VALUE       With a prompt: an answer other than VALUE gives
 *                      PAM_AUTH_ERR. Without expect= any non-NULL answer
 *                      passes.
 *   fuzzfile=/abs/path One conversation call with a batch described by the
 *                      bytes of the file (written by a fuzz target): byte 0
 *                      mod 41 is the message count N (0..40); bit 0 of byte
 *                      1 passes resp == NULL. Then per message: a style byte
 *                      (below 0x80: its value mod 8, so 0, 5 and 6 are
 *                      invalid styles; from 0x80: the byte as a signed
 *                      number), a big-endian u16 text length L (0..65535),
 *                      and up to L bytes of text (missing bytes are 'x'; the
 *                      text is NUL-terminated, so an embedded NUL cuts it
 *                      short). A PAM_BINARY_PROMPT's text is its packet,
 *                      header included, in a zeroed allocation at least as
 *                      long as the header declares (up to 1 MiB), so that a
 *                      reader trusting a corrupt header stays in bounds.
 *                      The conversation's code is returned; on success the
 *                      responses are freed (text answers wiped) and the step
 *                      passes. A missing file gives PAM_SYSTEM_ERR.
 *   ret=TOKEN          The code returned after all steps succeeded: a
 *                      lowercase name of a Linux-PAM return code without the
 *                      PAM_ prefix (success, auth_err, perm_denied,
 *                      user_unknown, conv_err, new_authtok_reqd, ignore,
 *                      incomplete, ...) or a decimal number. Default success.
 *
 * For every conversation step, a conversation result other than PAM_SUCCESS
 * is returned as is, so a test sees what the application answered. After a
 * successful call the responses are freed, string answers wiped first; a
 * NULL response array is accepted for the information-only steps. After a
 * failed call *resp is left alone, as the conversation contract says the
 * application must not have set it.
 *
 * pam_chauthtok calls a module twice. In the PAM_PRELIM_CHECK pass the
 * module writes its tidfile line (so a pam_chauthtok gives two chauthtok
 * lines) and returns PAM_SUCCESS; the other steps run in the
 * PAM_UPDATE_AUTHTOK pass only. Flags such as PAM_SILENT are ignored: the
 * messages are the point of the module.
 *
 * An unknown argument or a bad value is logged with pam_syslog and gives
 * PAM_SERVICE_ERR, so that a typo in a test's service file cannot pass
 * silently.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_modules.h>
#ifdef OPENPAM
/*
 * OpenPAM (its headers define OPENPAM): pam_get_item and pam_putenv are in
 * pam_appl.h; there is no pam_ext.h, so pam_syslog is plain syslog; there
 * is no PAM_BINARY_PROMPT, so the binary step is refused; its struct
 * pam_message has a char *msg, hence the casts below.
 */
#include <security/pam_appl.h>
#define pam_syslog(pamh, level, ...) ((void)(pamh), syslog((level), __VA_ARGS__))
#else
#include <security/pam_ext.h>
#endif

/*
 * Style 7 is Linux-PAM's PAM_BINARY_PROMPT. The fuzz step sends it on any
 * PAM: OpenPAM has no name for it and must treat it as an unknown style.
 */
#ifdef PAM_BINARY_PROMPT
#define FUZZ_BINARY PAM_BINARY_PROMPT
#else
#define FUZZ_BINARY 7
#endif

#ifdef SYS_gettid
#define THREAD_ID() ((long)syscall(SYS_gettid))
#else
#define THREAD_ID() ((long)getpid()) /* no kernel thread ids outside Linux */
#endif

#define MAX_NMSG 4096L
#define MAX_BIGMSG (16L * 1024 * 1024)
#define MAX_SLEEPMS 600000L

/* BINARY_PROMPT packets: 4 length bytes, 1 type byte, 4 data bytes. */
#define PACKET_LEN 9

struct options {
	const char *tidfile;
	const char *waitfile;	/* NULL: no wait */
	long sleepms;
	long nmsg;		/* -1: not requested */
	int nullresp;
	long bigmsg;		/* -1: not requested */
	int binary;
	const char *prompt;	/* NULL: no prompt */
	int prompt_style;
	const char *expect;	/* NULL: any answer */
	const char *fuzzfile;	/* NULL: no fuzzed batch */
	int ret;
};

struct code_name {
	const char *name;
	int code;
};

static const struct code_name codes[] = {
	{ "success", PAM_SUCCESS },
	{ "open_err", PAM_OPEN_ERR },
	{ "symbol_err", PAM_SYMBOL_ERR },
	{ "service_err", PAM_SERVICE_ERR },
	{ "system_err", PAM_SYSTEM_ERR },
	{ "buf_err", PAM_BUF_ERR },
	{ "perm_denied", PAM_PERM_DENIED },
	{ "auth_err", PAM_AUTH_ERR },
	{ "cred_insufficient", PAM_CRED_INSUFFICIENT },
	{ "authinfo_unavail", PAM_AUTHINFO_UNAVAIL },
	{ "user_unknown", PAM_USER_UNKNOWN },
	{ "maxtries", PAM_MAXTRIES },
	{ "new_authtok_reqd", PAM_NEW_AUTHTOK_REQD },
	{ "acct_expired", PAM_ACCT_EXPIRED },
	{ "session_err", PAM_SESSION_ERR },
	{ "cred_unavail", PAM_CRED_UNAVAIL },
	{ "cred_expired", PAM_CRED_EXPIRED },
	{ "cred_err", PAM_CRED_ERR },
	{ "no_module_data", PAM_NO_MODULE_DATA },
	{ "conv_err", PAM_CONV_ERR },
	{ "authtok_err", PAM_AUTHTOK_ERR },
	{ "authtok_recovery_err", PAM_AUTHTOK_RECOVERY_ERR },
	{ "authtok_lock_busy", PAM_AUTHTOK_LOCK_BUSY },
	{ "authtok_disable_aging", PAM_AUTHTOK_DISABLE_AGING },
	{ "try_again", PAM_TRY_AGAIN },
	{ "ignore", PAM_IGNORE },
	{ "abort", PAM_ABORT },
	{ "authtok_expired", PAM_AUTHTOK_EXPIRED },
	{ "module_unknown", PAM_MODULE_UNKNOWN },
	{ "bad_item", PAM_BAD_ITEM },
#ifdef PAM_CONV_AGAIN
	{ "conv_again", PAM_CONV_AGAIN },
	{ "incomplete", PAM_INCOMPLETE },
#endif
#ifdef OPENPAM
	{ "domain_unknown", PAM_DOMAIN_UNKNOWN },
	{ "bad_handle", PAM_BAD_HANDLE },
	{ "bad_feature", PAM_BAD_FEATURE },
	{ "bad_constant", PAM_BAD_CONSTANT },
#endif
};

/* Parses a decimal in [0, max] into *out; returns 0 on success. */
static int parse_long(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Maps a ret= token to a PAM code; returns 0 on success. */
static int parse_code(const char *s, int *out)
{
	size_t i;
	long v;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		if (strcmp(s, codes[i].name) == 0) {
			*out = codes[i].code;
			return 0;
		}
	}
	if (parse_long(s, 255, &v) == 0) {
		*out = (int)v;
		return 0;
	}
	return -1;
}

/* Returns the value of argument arg if it starts with key, else NULL. */
static const char *value_of(const char *arg, const char *key)
{
	size_t n = strlen(key);

	return strncmp(arg, key, n) == 0 ? arg + n : NULL;
}

/* Fills *o from the module arguments; returns PAM_SUCCESS or PAM_SERVICE_ERR. */
static int parse_options(pam_handle_t *pamh, int argc, const char **argv,
			 struct options *o)
{
	const char *v;
	int i;

	memset(o, 0, sizeof *o);
	o->nmsg = -1;
	o->bigmsg = -1;
	o->ret = PAM_SUCCESS;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		int bad = 0;

		if ((v = value_of(a, "tidfile=")) != NULL)
			o->tidfile = v, bad = (*v != '/');
		else if ((v = value_of(a, "waitfile=")) != NULL)
			o->waitfile = v, bad = (*v != '/');
		else if ((v = value_of(a, "sleepms=")) != NULL)
			bad = parse_long(v, MAX_SLEEPMS, &o->sleepms);
		else if ((v = value_of(a, "setenv=")) != NULL)
			bad = (*v == '\0');
		else if ((v = value_of(a, "nmsg=")) != NULL)
			bad = parse_long(v, MAX_NMSG, &o->nmsg);
		else if (strcmp(a, "nullresp") == 0)
			o->nullresp = 1;
		else if ((v = value_of(a, "bigmsg=")) != NULL)
			bad = parse_long(v, MAX_BIGMSG, &o->bigmsg);
		else if (strcmp(a, "binary") == 0)
			o->binary = 1;
		else if ((v = value_of(a, "prompt=")) != NULL) {
			bad = (o->prompt != NULL);
			o->prompt = v;
			o->prompt_style = PAM_PROMPT_ECHO_OFF;
		} else if ((v = value_of(a, "echoprompt=")) != NULL) {
			bad = (o->prompt != NULL);
			o->prompt = v;
			o->prompt_style = PAM_PROMPT_ECHO_ON;
		} else if ((v = value_of(a, "expect=")) != NULL)
			o->expect = v;
		else if ((v = value_of(a, "fuzzfile=")) != NULL)
			o->fuzzfile = v, bad = (*v != '/');
		else if ((v = value_of(a, "ret=")) != NULL)
			bad = parse_code(v, &o->ret);
		else
			bad = 1;
		if (bad) {
			pam_syslog(pamh, LOG_ERR, "bad or unknown argument: %s", a);
			return PAM_SERVICE_ERR;
		}
	}
	if (o->expect != NULL && o->prompt == NULL) {
		pam_syslog(pamh, LOG_ERR, "expect= needs prompt= or echoprompt=");
		return PAM_SERVICE_ERR;
	}
	return PAM_SUCCESS;
}

/* Appends "<op> <tid>\n" to path with a single write. */
static int write_tid(pam_handle_t *pamh, const char *path, const char *op)
{
	char line[64];
	int fd, n, ok;

	n = snprintf(line, sizeof line, "%s %ld\n", op, THREAD_ID());
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		pam_syslog(pamh, LOG_ERR, "open %s: %s", path, strerror(errno));
		return PAM_SYSTEM_ERR;
	}
	ok = (write(fd, line, (size_t)n) == n);
	if (close(fd) != 0)
		ok = 0;
	return ok ? PAM_SUCCESS : PAM_SYSTEM_ERR;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Waits until path exists, for at most ten minutes; returns 0 when it does. */
static int wait_file(const char *path)
{
	long i;

	for (i = 0; i < 600000; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

/* Calls the application's conversation function. */
static int converse(pam_handle_t *pamh, int n, const struct pam_message **msg,
		    struct pam_response **resp)
{
	const struct pam_conv *conv = NULL;
	int rc;

	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS)
		return rc;
	if (conv == NULL || conv->conv == NULL)
		return PAM_CONV_ERR;
	return conv->conv(n, msg, resp, conv->appdata_ptr);
}

/* Frees a response array of n entries, wiping string answers first. */
static void free_responses(struct pam_response *resp, long n, int strings)
{
	long i;

	if (resp == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (resp[i].resp == NULL)
			continue;
		if (strings)
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
		free(resp[i].resp);
	}
	free(resp);
}

/* Sends one message and frees the answer; for the information-only steps. */
static int send_info(pam_handle_t *pamh, int style, const char *text)
{
	struct pam_message m = { style, (char *)text };
	const struct pam_message *mp = &m;
	struct pam_response *resp = NULL;
	int rc;

	rc = converse(pamh, 1, &mp, &resp);
	if (rc == PAM_SUCCESS)
		free_responses(resp, 1, 1);
	return rc;
}

static int step_setenv(pam_handle_t *pamh, int argc, const char **argv)
{
	const char *v;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if ((v = value_of(argv[i], "setenv=")) == NULL)
			continue;
		rc = pam_putenv(pamh, v);
		if (rc != PAM_SUCCESS)
			return rc;
	}
	return PAM_SUCCESS;
}

static int step_nmsg(pam_handle_t *pamh, long n)
{
	struct pam_message *msgs;
	const struct pam_message **ptrs;
	struct pam_response *resp = NULL;
	char (*texts)[24];
	size_t cap = n > 0 ? (size_t)n : 1;
	long i;
	int rc = PAM_BUF_ERR;

	msgs = calloc(cap, sizeof *msgs);
	ptrs = calloc(cap, sizeof *ptrs);
	texts = calloc(cap, sizeof *texts);
	if (msgs == NULL || ptrs == NULL || texts == NULL)
		goto out;
	for (i = 0; i < (long)cap; i++) {
		snprintf(texts[i], sizeof texts[i], "msg %ld", i);
		msgs[i].msg_style = PAM_TEXT_INFO;
		msgs[i].msg = texts[i];
		ptrs[i] = &msgs[i];
	}
	rc = converse(pamh, (int)n, ptrs, &resp);
	if (rc == PAM_SUCCESS)
		free_responses(resp, n, 1);
out:
	free(texts);
	free(ptrs);
	free(msgs);
	return rc;
}

static int step_nullresp(pam_handle_t *pamh)
{
	struct pam_message m = { PAM_TEXT_INFO, (char *)"nullresp" };
	const struct pam_message *mp = &m;

	return converse(pamh, 1, &mp, NULL);
}

static int step_bigmsg(pam_handle_t *pamh, long n)
{
	char *text;
	int rc;

	text = malloc((size_t)n + 1);
	if (text == NULL)
		return PAM_BUF_ERR;
	memset(text, 'x', (size_t)n);
	text[n] = '\0';
	rc = send_info(pamh, PAM_TEXT_INFO, text);
	free(text);
	return rc;
}

static int step_binary(pam_handle_t *pamh)
{
#ifndef PAM_BINARY_PROMPT
	pam_syslog(pamh, LOG_ERR, "binary: this PAM has no PAM_BINARY_PROMPT");
	return PAM_SERVICE_ERR;
#else
	static const unsigned char ping[PACKET_LEN] = {
		0, 0, 0, PACKET_LEN, 0x01, 'p', 'i', 'n', 'g'
	};
	struct pam_message m = { PAM_BINARY_PROMPT, (const char *)ping };
	const struct pam_message *mp = &m;
	struct pam_response *resp = NULL;
	const unsigned char *p;
	uint32_t len;
	int rc;

	rc = converse(pamh, 1, &mp, &resp);
	if (rc != PAM_SUCCESS)
		return rc;
	rc = PAM_AUTH_ERR;
	if (resp != NULL && resp[0].resp != NULL) {
		p = (const unsigned char *)resp[0].resp;
		len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		      (uint32_t)p[2] << 8 | (uint32_t)p[3];
		if (len == PACKET_LEN && p[4] == 0x02 &&
		    memcmp(p + 5, "pong", 4) == 0)
			rc = PAM_SUCCESS;
	}
	free_responses(resp, 1, 0);
	return rc;
#endif
}

static int step_prompt(pam_handle_t *pamh, const struct options *o)
{
	struct pam_message m = { o->prompt_style, (char *)o->prompt };
	const struct pam_message *mp = &m;
	struct pam_response *resp = NULL;
	int rc;

	rc = converse(pamh, 1, &mp, &resp);
	if (rc != PAM_SUCCESS)
		return rc;
	if (resp == NULL || resp[0].resp == NULL)
		rc = PAM_AUTH_ERR;
	else if (o->expect != NULL && strcmp(resp[0].resp, o->expect) != 0)
		rc = PAM_AUTH_ERR;
	free_responses(resp, 1, 1);
	return rc;
}

#define FUZZ_MAX_FILE (4L * 1024 * 1024)
#define FUZZ_MAX_NMSG 40
#define FUZZ_MAX_PACKET (1L << 20)

/* Reads the whole file at path into a malloc'd buffer; returns its length, or -1. */
static long read_file(const char *path, unsigned char **out)
{
	unsigned char *buf;
	long n = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	buf = malloc(FUZZ_MAX_FILE);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	while (n < FUZZ_MAX_FILE &&
	       (r = read(fd, buf + n, (size_t)(FUZZ_MAX_FILE - n))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return -1;
		}
		n += r;
	}
	close(fd);
	*out = buf;
	return n;
}

/* Sends the batch that fuzzfile= describes (see the top of the file). */
static int step_fuzz(pam_handle_t *pamh, const char *path)
{
	struct pam_message msgs[FUZZ_MAX_NMSG];
	const struct pam_message *ptrs[FUZZ_MAX_NMSG];
	char *texts[FUZZ_MAX_NMSG];
	struct pam_response *resp = NULL;
	unsigned char *in = NULL;
	long len, pos = 2, i, n, nullresp;
	int rc = PAM_BUF_ERR;

	len = read_file(path, &in);
	if (len < 0) {
		pam_syslog(pamh, LOG_ERR, "fuzzfile %s: cannot read it", path);
		return PAM_SYSTEM_ERR;
	}
	n = len > 0 ? in[0] % (FUZZ_MAX_NMSG + 1) : 0;
	nullresp = len > 1 ? in[1] & 1 : 0;
	memset(texts, 0, sizeof texts);
	for (i = 0; i < n; i++) {
		unsigned char sb = pos < len ? in[pos] : 1;
		long tl = 0, have, alloc, declared;
		int style;

		pos++;
		style = sb < 0x80 ? sb % 8 : (int)(signed char)sb;
		if (pos < len)
			tl = (long)in[pos] << 8;
		if (pos + 1 < len)
			tl |= in[pos + 1];
		pos += 2;
		have = len - pos;
		if (have < 0)
			have = 0;
		if (have > tl)
			have = tl;
		alloc = tl + 1;
		if (style == FUZZ_BINARY) {
			unsigned char hdr[4] = { 0, 0, 0, 0 };
			long k;

			/* The header as the buffer will hold it. */
			for (k = 0; k < 4 && k < tl; k++)
				hdr[k] = k < have ? in[pos + k] : 'x';
			declared = (long)hdr[0] << 24 | (long)hdr[1] << 16 |
				   (long)hdr[2] << 8 | (long)hdr[3];
			if (declared <= FUZZ_MAX_PACKET && declared + 1 > alloc)
				alloc = declared + 1;
			if (alloc < 8)
				alloc = 8;
		}
		texts[i] = calloc((size_t)alloc, 1);
		if (texts[i] == NULL)
			goto out;
		memset(texts[i], 'x', (size_t)tl);
		if (have > 0)
			memcpy(texts[i], in + pos, (size_t)have);
		pos += have;
		msgs[i].msg_style = style;
		msgs[i].msg = texts[i];
		ptrs[i] = &msgs[i];
	}
	rc = converse(pamh, (int)n, ptrs, nullresp ? NULL : &resp);
	if (rc == PAM_SUCCESS && resp != NULL) {
		for (i = 0; i < n; i++) {
			if (resp[i].resp == NULL)
				continue;
			if (msgs[i].msg_style != FUZZ_BINARY)
				explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
		free(resp);
	}
out:
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(in);
	return rc;
}

/* Runs the steps of one entry point in the documented order. */
static int run(pam_handle_t *pamh, const char *op, int argc, const char **argv,
	       int prelim)
{
	struct options o;
	int rc;

	rc = parse_options(pamh, argc, argv, &o);
	if (rc != PAM_SUCCESS)
		return rc;
	if (o.tidfile != NULL && (rc = write_tid(pamh, o.tidfile, op)) != PAM_SUCCESS)
		return rc;
	if (prelim)
		return PAM_SUCCESS;
	if (o.waitfile != NULL && wait_file(o.waitfile) != 0)
		return PAM_SYSTEM_ERR;
	if (o.sleepms > 0)
		sleep_ms(o.sleepms);
	if ((rc = step_setenv(pamh, argc, argv)) != PAM_SUCCESS)
		return rc;
	if (o.nmsg >= 0 && (rc = step_nmsg(pamh, o.nmsg)) != PAM_SUCCESS)
		return rc;
	if (o.nullresp && (rc = step_nullresp(pamh)) != PAM_SUCCESS)
		return rc;
	if (o.bigmsg >= 0 && (rc = step_bigmsg(pamh, o.bigmsg)) != PAM_SUCCESS)
		return rc;
	if (o.binary && (rc = step_binary(pamh)) != PAM_SUCCESS)
		return rc;
	if (o.prompt != NULL && (rc = step_prompt(pamh, &o)) != PAM_SUCCESS)
		return rc;
	if (o.fuzzfile != NULL && (rc = step_fuzz(pamh, o.fuzzfile)) != PAM_SUCCESS)
		return rc;
	return o.ret;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return run(pamh, "auth", argc, argv, 0);
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return run(pamh, "setcred", argc, argv, 0);
}

int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return run(pamh, "acct", argc, argv, 0);
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return run(pamh, "open_session", argc, argv, 0);
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return run(pamh, "close_session", argc, argv, 0);
}

int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return run(pamh, "chauthtok", argc, argv, (flags & PAM_PRELIM_CHECK) != 0);
}
