#include "cpam.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// conv answers prompts with the transaction's answer and other messages with
// no response, the way the Go conversations of the bench do.
static int conv(int num, const struct pam_message **msg, struct pam_response **resp, void *appdata) {
	const char *answer = appdata ? appdata : "";
	if (num <= 0 || num > PAM_MAX_NUM_MSG || resp == NULL)
		return PAM_CONV_ERR;
	struct pam_response *r = calloc((size_t)num, sizeof *r);
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num; i++) {
		int style = msg[i]->msg_style;
		if (style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON)
			continue;
		r[i].resp = strdup(answer);
		if (r[i].resp == NULL) {
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

pam_handle_t *bench_start(const bench_txn *t, int *rc) {
	struct pam_conv c = {conv, (void *)t->answer};
	pam_handle_t *h = NULL;
	*rc = pam_start_confdir(t->service, t->user, &c, t->confdir, &h);
	return h;
}

int bench_op(pam_handle_t *h, int op) {
	int rc;
	switch (op) {
	case BENCH_OP_CHAUTHTOK:
		return pam_chauthtok(h, 0);
	case BENCH_OP_LOGIN:
		if ((rc = pam_authenticate(h, 0)) != PAM_SUCCESS || (rc = pam_acct_mgmt(h, 0)) != PAM_SUCCESS ||
		    (rc = pam_open_session(h, 0)) != PAM_SUCCESS)
			return rc;
		return pam_close_session(h, 0);
	}
	return pam_authenticate(h, 0);
}

int bench_hold(const char *const *paths, int n, void **handles) {
	int bad = 0;
	for (int i = 0; i < n; i++)
		if ((handles[i] = dlopen(paths[i], RTLD_NOW)) == NULL)
			bad++;
	return bad;
}

void bench_release(void **handles, int n) {
	for (int i = 0; i < n; i++)
		if (handles[i] != NULL)
			dlclose(handles[i]);
}

int bench_end(pam_handle_t *h, int rc) { return pam_end(h, rc); }

int bench_one(const bench_txn *t) {
	int rc;
	pam_handle_t *h = bench_start(t, &rc);
	if (rc != PAM_SUCCESS) {
		if (h != NULL)
			pam_end(h, rc);
		return rc;
	}
	rc = bench_op(h, t->op);
	int erc = pam_end(h, rc);
	return rc != PAM_SUCCESS ? rc : erc;
}

long bench_loop(const bench_txn *t, long n) {
	long bad = 0;
	for (long i = 0; i < n; i++)
		if (bench_one(t) != t->expect)
			bad++;
	return bad;
}

typedef struct {
	const bench_txn *t;
	long n;
	long bad;
	double ns;
} worker_arg;

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *loop_worker(void *p) {
	worker_arg *a = p;
	a->bad = bench_loop(a->t, a->n);
	return NULL;
}

long bench_parallel(const bench_txn *t, long n, int threads) {
	pthread_t *ids = calloc((size_t)threads, sizeof *ids);
	worker_arg *args = calloc((size_t)threads, sizeof *args);
	if (ids == NULL || args == NULL) {
		free(ids);
		free(args);
		return -1;
	}
	int started = 0;
	for (; started < threads; started++) {
		args[started].t = t;
		args[started].n = n;
		if (pthread_create(&ids[started], NULL, loop_worker, &args[started]) != 0)
			break;
	}
	long bad = started == threads ? 0 : -1;
	for (int i = 0; i < started; i++) {
		pthread_join(ids[i], NULL);
		if (bad >= 0)
			bad += args[i].bad;
	}
	free(ids);
	free(args);
	return bad;
}

static void *one_worker(void *p) {
	worker_arg *a = p;
	double t0 = now_ns();
	a->bad = bench_one(a->t) != a->t->expect;
	a->ns = now_ns() - t0;
	return NULL;
}

long bench_concurrent(const bench_txn *t, int n, size_t stack_kib, double *ns, int *not_started) {
	pthread_t *ids = calloc((size_t)n, sizeof *ids);
	worker_arg *args = calloc((size_t)n, sizeof *args);
	char *ok = calloc((size_t)n, 1);
	*not_started = 0;
	if (ids == NULL || args == NULL || ok == NULL) {
		free(ids);
		free(args);
		free(ok);
		*not_started = n;
		return 0;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, stack_kib * 1024);
	for (int i = 0; i < n; i++) {
		args[i].t = t;
		if (pthread_create(&ids[i], &attr, one_worker, &args[i]) == 0)
			ok[i] = 1;
		else
			(*not_started)++;
	}
	pthread_attr_destroy(&attr);
	long bad = 0;
	for (int i = 0; i < n; i++) {
		if (!ok[i]) {
			ns[i] = -1;
			continue;
		}
		pthread_join(ids[i], NULL);
		bad += args[i].bad;
		ns[i] = args[i].ns;
	}
	free(ids);
	free(args);
	free(ok);
	return bad;
}

size_t bench_malloc_inuse(void) {
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}
