/*
 * A PAM application for pam_gotest's own tests. It starts a transaction
 * with pam_start_confdir, runs the requested calls and prints what the
 * conversation saw, so that a test can check the module from the outside.
 *
 * Usage: host [-a ANSWER]... [-f CODE] [-N] [-B] CONFDIR SERVICE USER OP...
 *
 *   -a ANSWER  answer the next prompt with ANSWER (repeatable, used in
 *              order); a prompt with no answer left fails the conversation
 *              with PAM_CONV_ERR
 *   -f CODE    make every conversation call return CODE untouched
 *   -N         answer prompts with a NULL resp (and PAM_SUCCESS)
 *   -B         answer binary prompts with a packet of the wrong type
 *
 * OP is auth, setcred, acct, open_session, close_session, chauthtok or env.
 * The host prints "tid N" first, then for each conversation call
 * "conv n=N resp=set|null" followed by one line per message:
 * "info LEN TEXT", "error LEN TEXT" (TEXT cut to 64 bytes),
 * "prompt-off TEXT", "prompt-on TEXT" or "binary LEN TYPE DATA". Like a
 * careful application, it refuses calls with fewer than 1 or more than
 * PAM_MAX_NUM_MSG messages ("conv n=N refused", PAM_CONV_ERR). After each
 * call it prints "OP CODE"; env prints "env NAME=VALUE" lines.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_ANSWERS 64

static const char *answers[MAX_ANSWERS];
static int nanswers, next_answer;
static int fail_code = -1, null_answers, bad_binary;

static char *binary_answer(const unsigned char *in)
{
	uint32_t len = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
		       (uint32_t)in[2] << 8 | (uint32_t)in[3];
	int data = len >= 5 && len <= 69 ? (int)(len - 5) : 0;
	unsigned char *out;

	printf("binary %u %u %.*s\n", len, in[4], data, (const char *)in + 5);
	out = malloc(9);
	if (out == NULL)
		return NULL;
	memcpy(out, "\0\0\0\x09", 4);
	out[4] = bad_binary ? 0x03 : 0x02;
	memcpy(out + 5, "pong", 4);
	return (char *)out;
}

static int conversation(int n, const struct pam_message **msg,
			struct pam_response **resp, void *appdata)
{
	struct pam_response *r;
	int i, needs_answer = 0;

	(void)appdata;
	if (n <= 0 || n > PAM_MAX_NUM_MSG) {
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
		const char *text = msg[i]->msg;

		switch (msg[i]->msg_style) {
		case PAM_TEXT_INFO:
			printf("info %zu %.64s\n", strlen(text), text);
			break;
		case PAM_ERROR_MSG:
			printf("error %zu %.64s\n", strlen(text), text);
			break;
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			needs_answer = 1;
			printf("prompt-%s %s\n",
			       msg[i]->msg_style == PAM_PROMPT_ECHO_ON ? "on" : "off", text);
			if (null_answers)
				break;
			if (next_answer >= nanswers)
				goto fail;
			r[i].resp = strdup(answers[next_answer++]);
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_BINARY_PROMPT:
			needs_answer = 1;
			r[i].resp = binary_answer((const unsigned char *)text);
			if (r[i].resp == NULL)
				goto fail;
			break;
		default:
			printf("style %d\n", msg[i]->msg_style);
			goto fail;
		}
	}
	if (resp == NULL) {
		free(r);
		return needs_answer ? PAM_CONV_ERR : PAM_SUCCESS;
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
		printf("env %s\n", env[i]);
		free(env[i]);
	}
	free(env);
}

static int usage(void)
{
	fprintf(stderr, "usage: host [-a ANSWER]... [-f CODE] [-N] [-B] CONFDIR SERVICE USER OP...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct pam_conv conv = { conversation, NULL };
	pam_handle_t *pamh = NULL;
	int opt, rc, last = PAM_SUCCESS, i;

	while ((opt = getopt(argc, argv, "+a:f:NB")) != -1) {
		switch (opt) {
		case 'a':
			if (nanswers == MAX_ANSWERS)
				return usage();
			answers[nanswers++] = optarg;
			break;
		case 'f':
			fail_code = atoi(optarg);
			break;
		case 'N':
			null_answers = 1;
			break;
		case 'B':
			bad_binary = 1;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind < 3)
		return usage();
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("tid %ld\n", (long)syscall(SYS_gettid));
	rc = pam_start_confdir(argv[optind + 1], argv[optind + 2], &conv,
			       argv[optind], &pamh);
	printf("start %d\n", rc);
	if (rc != PAM_SUCCESS)
		return 1;
	for (i = optind + 3; i < argc; i++) {
		const char *op = argv[i];

		if (strcmp(op, "auth") == 0)
			rc = pam_authenticate(pamh, 0);
		else if (strcmp(op, "setcred") == 0)
			rc = pam_setcred(pamh, PAM_ESTABLISH_CRED);
		else if (strcmp(op, "acct") == 0)
			rc = pam_acct_mgmt(pamh, 0);
		else if (strcmp(op, "open_session") == 0)
			rc = pam_open_session(pamh, 0);
		else if (strcmp(op, "close_session") == 0)
			rc = pam_close_session(pamh, 0);
		else if (strcmp(op, "chauthtok") == 0)
			rc = pam_chauthtok(pamh, 0);
		else if (strcmp(op, "env") == 0) {
			print_env(pamh);
			continue;
		} else {
			fprintf(stderr, "host: unknown op %s\n", op);
			pam_end(pamh, PAM_SUCCESS);
			return 2;
		}
		printf("%s %d\n", op, rc);
		last = rc;
	}
	pam_end(pamh, last);
	return 0;
}
