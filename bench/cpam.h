// The C side of the bench: the same transactions as the Go implementations,
// written against libpam directly, so that the Go figures have a floor.
#ifndef GOPAM_BENCH_CPAM_H
#define GOPAM_BENCH_CPAM_H

#include <stddef.h>
#include <security/pam_appl.h>

// BENCH_OP_LOGIN is authenticate, acct_mgmt, open_session, close_session.
enum { BENCH_OP_AUTH = 0, BENCH_OP_CHAUTHTOK = 1, BENCH_OP_LOGIN = 2 };

typedef struct {
	const char *service;
	const char *confdir;
	const char *user;
	const char *answer; // the answer to every prompt
	int op;             // BENCH_OP_*
	int expect;         // the status each transaction should end with
} bench_txn;

// bench_one runs one transaction (start, op, end) and returns the status of
// the op (or of pam_start when it fails).
int bench_one(const bench_txn *t);

// bench_loop runs n transactions in this thread and returns how many ended
// with a status other than t->expect.
long bench_loop(const bench_txn *t, long n);

// The three calls of a transaction, for the "one foreign call per PAM call"
// variant driven from Go.
pam_handle_t *bench_start(const bench_txn *t, int *rc);
int bench_op(pam_handle_t *h, int op);
int bench_end(pam_handle_t *h, int rc);

// bench_parallel runs n transactions in each of threads threads and returns
// the number of unexpected statuses, or -1 if a thread could not start.
long bench_parallel(const bench_txn *t, long n, int threads);

// bench_concurrent starts one thread (with a stack of stack_kib KiB) per
// transaction, n in all, each running one transaction, and waits for all.
// ns[i] receives the duration of transaction i. It returns the number of
// unexpected statuses; *not_started counts threads that could not be created.
long bench_concurrent(const bench_txn *t, int n, size_t stack_kib, double *ns, int *not_started);

// bench_hold dlopens each of the n module paths (RTLD_NOW, as libpam does)
// and stores the handles, so that the process keeps them loaded; it returns
// how many could not be opened. bench_release dlcloses them.
int bench_hold(const char *const *paths, int n, void **handles);
void bench_release(void **handles, int n);

// bench_malloc_inuse returns glibc's bytes in use (mallinfo2: uordblks +
// hblkhd), summed over all arenas.
size_t bench_malloc_inuse(void);

#endif
