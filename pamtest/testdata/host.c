/*
 * A minimal PAM application for pamtest's own tests. It starts a
 * transaction with pam_start_confdir, so the service files come from the
 * stack's directory and never from /etc/pam.d.
 *
 * Usage: host CONFDIR SERVICE USER OP...
 *
 * OP is one of auth, setcred, acct, open_session, close_session, chauthtok
 * or env. After each call the host prints "OP CODE" with the numeric PAM
 * return code; env prints the PAM environment as "env NAME=VALUE" lines.
 * Prompts are answered with successive lines of standard input; messages
 * are printed as "info: TEXT" or "error: TEXT". The exit status is 0 when
 * pam_start succeeded, 2 on a usage error and 1 otherwise.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_answer(void)
{
	char line[1024];

	if (fgets(line, sizeof line, stdin) == NULL)
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

static int conversation(int n, const struct pam_message **msg,
			struct pam_response **resp, void *appdata)
{
	struct pam_response *r;
	int i;

	(void)appdata;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof *r);
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			printf("prompt: %s\n", msg[i]->msg);
			r[i].resp = read_answer();
			if (r[i].resp == NULL)
				goto fail;
			break;
		case PAM_TEXT_INFO:
			printf("info: %s\n", msg[i]->msg);
			break;
		case PAM_ERROR_MSG:
			printf("error: %s\n", msg[i]->msg);
			break;
		default:
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
		printf("env %s\n", env[i]);
		free(env[i]);
	}
	free(env);
}

int main(int argc, char **argv)
{
	struct pam_conv conv = { conversation, NULL };
	pam_handle_t *pamh = NULL;
	int rc, last = PAM_SUCCESS, i;

	if (argc < 4) {
		fprintf(stderr, "usage: host CONFDIR SERVICE USER OP...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	rc = pam_start_confdir(argv[2], argv[3], &conv, argv[1], &pamh);
	printf("start %d\n", rc);
	if (rc != PAM_SUCCESS)
		return 1;
	for (i = 4; i < argc; i++) {
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
