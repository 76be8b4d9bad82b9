//go:build cgo

/*
 * gopam_shim.c: the C side of a PAM module written in Go with
 * github.com/gopam/pam/module.
 *
 * Built alone, it is the isolated mode's installed module: a small C module
 * that runs the module's Go code in a helper process and relays every PAM
 * call that code makes. Build it once per Go module:
 *
 *   cc -shared -fPIC -O2 -o pam_NAME.so \
 *      "$(go list -f '{{.Dir}}' github.com/gopam/pam/module)/gopam_shim.c" -lpam
 *
 * and install the helper (go build -o pam_NAME-helper . in the module's
 * package) beside it, or name the helper with the module argument
 * helper=/absolute/path. The module argument gopam_timeout=SECONDS (default
 * 120) bounds every wait for the helper; the helper's death ends every wait
 * at once.
 *
 * Compiled by cgo as part of package module, with GOPAM_INPROCESS defined
 * (see inprocess.go), it is the entry layer of the in-process mode (the Go c-shared library): the same entry
 * points call the Go code directly when that is safe, and fall back to the
 * helper when it is not (the host forked since the library was loaded, or
 * the host is itself a Go program).
 *
 * The protocol, over a SOCK_STREAM socketpair (the helper's end is its fd 3):
 * every message is a native-endian uint32 length followed by that many bytes:
 * a one-byte type, then fields. An int field is a native int32; a bytes field
 * is an int32 length (-1 for NULL) followed by the bytes. Numbers of codes and
 * items are the running implementation's; flags are the portable bits below.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <security/pam_modules.h>
#ifdef __LINUX_PAM__
#include <security/pam_ext.h>
#endif
#ifdef OPENPAM
#include <security/openpam.h>
#endif

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "gopam_shim.h"

/* Only the pam_sm_* entry points are exported; the rest stays inside the
 * object, so that two gopam modules in one process never bind to each
 * other's functions. */
#pragma GCC visibility push(hidden)

/* ---- portable flags, translated here where the header names are known. */

static unsigned gopam_portable_flags(int op, int flags)
{
	unsigned f = 0;
	if (flags & PAM_SILENT)
		f |= GOPAM_F_SILENT;
	switch (op) {
	case GOPAM_OP_AUTHENTICATE:
		if (flags & PAM_DISALLOW_NULL_AUTHTOK)
			f |= GOPAM_F_DISALLOW_NULL_AUTHTOK;
		break;
	case GOPAM_OP_ACCT_MGMT:
		if (flags & PAM_DISALLOW_NULL_AUTHTOK)
			f |= GOPAM_F_DISALLOW_NULL_AUTHTOK;
		break;
	case GOPAM_OP_SETCRED:
		if (flags & PAM_ESTABLISH_CRED)
			f |= GOPAM_F_ESTABLISH_CRED;
		if (flags & PAM_DELETE_CRED)
			f |= GOPAM_F_DELETE_CRED;
		if (flags & PAM_REINITIALIZE_CRED)
			f |= GOPAM_F_REINITIALIZE_CRED;
		if (flags & PAM_REFRESH_CRED)
			f |= GOPAM_F_REFRESH_CRED;
		break;
	case GOPAM_OP_CHAUTHTOK:
		if (flags & PAM_CHANGE_EXPIRED_AUTHTOK)
			f |= GOPAM_F_CHANGE_EXPIRED_AUTHTOK;
		if (flags & PAM_PRELIM_CHECK)
			f |= GOPAM_F_PRELIM_CHECK;
		if (flags & PAM_UPDATE_AUTHTOK)
			f |= GOPAM_F_UPDATE_AUTHTOK;
		break;
	}
	return f;
}

int gopam_impl(void)
{
#ifdef OPENPAM
	return GOPAM_IMPL_OPENPAM;
#else
	return GOPAM_IMPL_LINUX;
#endif
}

/* ---- calls into libpam shared by both modes. */

/* gopam_log sends one line to the system log through the handle. */
void gopam_log(pam_handle_t *pamh, int prio, const char *msg)
{
#ifdef __LINUX_PAM__
	pam_syslog(pamh, prio, "%s", msg);
#else
	(void)pamh;
	syslog(LOG_AUTHPRIV | prio, "%s", msg);
#endif
}

int gopam_fail_delay(pam_handle_t *pamh, unsigned usec)
{
#ifdef __LINUX_PAM__
	return pam_fail_delay(pamh, usec);
#else
	(void)pamh;
	(void)usec;
	return PAM_SYSTEM_ERR;
#endif
}

int gopam_get_item(pam_handle_t *pamh, int item, const char **out)
{
	const void *p = NULL;
	int rc = pam_get_item(pamh, item, &p);
	*out = rc == PAM_SUCCESS ? p : NULL;
	return rc;
}

int gopam_set_item(pam_handle_t *pamh, int item, const char *v)
{
	return pam_set_item(pamh, item, v);
}

int gopam_get_user(pam_handle_t *pamh, const char **out, const char *prompt)
{
	*out = NULL;
	return pam_get_user(pamh, out, prompt);
}

int gopam_get_authtok(pam_handle_t *pamh, int item, const char **out, const char *prompt)
{
	*out = NULL;
	return pam_get_authtok(pamh, item, out, prompt);
}

const char *gopam_getenv(pam_handle_t *pamh, const char *name)
{
	return pam_getenv(pamh, name);
}

int gopam_putenv(pam_handle_t *pamh, const char *nv)
{
	return pam_putenv(pamh, nv);
}

char **gopam_getenvlist(pam_handle_t *pamh)
{
	return pam_getenvlist(pamh);
}

/* gopam_free_envlist wipes and frees a list from pam_getenvlist. */
void gopam_free_envlist(char **env)
{
	if (env == NULL)
		return;
	for (char **e = env; *e != NULL; e++) {
		explicit_bzero(*e, strlen(*e));
		free(*e);
	}
	free(env);
}

/*
 * gopam_converse calls the application's conversation with n messages.
 * texts[i] is the NUL-terminated text, or for a binary prompt the libpamc
 * packet. On success *out is libpam's malloc'd response array, owned by the
 * caller, who frees it with gopam_free_responses.
 */
int gopam_converse(pam_handle_t *pamh, int n, const int *styles, const char *const *texts,
		   struct pam_response **out)
{
	const struct pam_conv *conv = NULL;
	*out = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	int rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS)
		return rc;
	if (conv == NULL || conv->conv == NULL)
		return PAM_CONV_ERR;
	struct pam_message msgs[PAM_MAX_NUM_MSG];
	const struct pam_message *ptrs[PAM_MAX_NUM_MSG];
	for (int i = 0; i < n; i++) {
		msgs[i].msg_style = styles[i];
		msgs[i].msg = texts[i];
		ptrs[i] = &msgs[i];
	}
	struct pam_response *resp = NULL;
	rc = conv->conv(n, ptrs, &resp, conv->appdata_ptr);
	if (rc != PAM_SUCCESS) {
		return rc;
	}
	*out = resp;
	return PAM_SUCCESS;
}

/* gopam_resp returns response i's text (NULL when absent). */
const char *gopam_resp(struct pam_response *r, int i)
{
	return r == NULL ? NULL : r[i].resp;
}

/* gopam_free_responses wipes and frees a response array of n entries. */
void gopam_free_responses(struct pam_response *r, int n, const int *styles)
{
	if (r == NULL)
		return;
	for (int i = 0; i < n; i++) {
		if (r[i].resp == NULL)
			continue;
#ifdef PAM_BINARY_PROMPT
		if (styles != NULL && styles[i] == PAM_BINARY_PROMPT) {
			const unsigned char *p = (const unsigned char *)r[i].resp;
			uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			explicit_bzero(r[i].resp, len >= 5 ? len : 5);
		} else
#endif
			explicit_bzero(r[i].resp, strlen(r[i].resp));
		free(r[i].resp);
	}
	free(r);
}

/* ---- where the module's Go code runs: decided here, once per call. */

static pid_t gopam_load_pid;
static int gopam_go_host;
static char gopam_self[4096];

/* gopam_note_is_go reports whether a PT_NOTE segment holds Go's build id note. */
static int gopam_note_is_go(const unsigned char *p, size_t size)
{
	size_t off = 0;
	while (off + sizeof(ElfW(Nhdr)) <= size) {
		const ElfW(Nhdr) *nh = (const void *)(p + off);
		size_t name = off + sizeof(*nh);
		size_t desc = name + ((nh->n_namesz + 3) & ~3u);
		/* Go writes the name "Go" padded with NULs: namesz 3 or 4. */
		if ((nh->n_namesz == 3 || nh->n_namesz == 4) && name + 3 <= size && memcmp(p + name, "Go", 3) == 0 && nh->n_type == 4)
			return 1;
		off = desc + ((nh->n_descsz + 3) & ~3u);
	}
	return 0;
}

/* gopam_find_go_host sets *data when an object other than this one (the
 * program, or another library) carries a Go runtime. */
static int gopam_find_go_host(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	int *found = data;
	Dl_info self;
	if (dladdr((void *)gopam_find_go_host, &self) && (void *)info->dlpi_addr == self.dli_fbase)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_NOTE &&
		    gopam_note_is_go((const unsigned char *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz)) {
			*found = 1;
			return 1;
		}
	}
	return 0;
}

/*
 * gopam_load runs when the object is loaded: it records the process that
 * loaded it (a later getpid() that differs means the host forked), whether
 * the program is a Go program (a second Go runtime must not run module code),
 * and the object's own path. In the in-process build it also pins the object
 * (RTLD_NODELETE): libpam dlcloses modules at pam_end, and a Go runtime
 * cannot be unmapped.
 */
__attribute__((constructor(101))) static void gopam_load(void)
{
	Dl_info info;
	gopam_load_pid = getpid();
	dl_iterate_phdr(gopam_find_go_host, &gopam_go_host);
	if (dladdr((void *)gopam_load, &info) && info.dli_fname != NULL) {
		snprintf(gopam_self, sizeof gopam_self, "%s", info.dli_fname);
#ifdef GOPAM_INPROCESS
		void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
		(void)self; /* the reference is never dropped: that is the point */
#endif
	}
}

/* ---- the relay to the helper process. */

struct gopam_buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static void buf_put(struct gopam_buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n)
			c *= 2;
		unsigned char *q = malloc(c);
		if (q == NULL) {
			b->oom = 1;
			return;
		}
		if (b->p != NULL) {
			memcpy(q, b->p, b->len);
			explicit_bzero(b->p, b->cap);
			free(b->p);
		}
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void buf_int(struct gopam_buf *b, int32_t v) { buf_put(b, &v, 4); }

static void buf_bytes(struct gopam_buf *b, const void *d, int32_t n)
{
	buf_int(b, d == NULL ? -1 : n);
	if (d != NULL)
		buf_put(b, d, (size_t)n);
}

static void buf_str(struct gopam_buf *b, const char *s) { buf_bytes(b, s, s ? (int32_t)strlen(s) : 0); }

/* buf_free wipes the buffer: it may have carried a password. */
static void buf_free(struct gopam_buf *b)
{
	if (b->p != NULL) {
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof *b);
}

struct gopam_rd {
	const unsigned char *p;
	size_t len, off;
	int bad;
};

static int32_t rd_int(struct gopam_rd *r)
{
	int32_t v = 0;
	if (r->bad || r->off + 4 > r->len) {
		r->bad = 1;
		return 0;
	}
	memcpy(&v, r->p + r->off, 4);
	r->off += 4;
	return v;
}

/* rd_bytes returns a pointer into the message (NULL for a NULL field). */
static const unsigned char *rd_bytes(struct gopam_rd *r, int32_t *n)
{
	*n = rd_int(r);
	if (r->bad || *n < 0) {
		*n = 0;
		return NULL;
	}
	if (r->off + (size_t)*n > r->len) {
		r->bad = 1;
		*n = 0;
		return NULL;
	}
	const unsigned char *p = r->p + r->off;
	r->off += (size_t)*n;
	return p;
}

/* rd_cstr copies a bytes field into a malloc'd NUL-terminated string. */
static char *rd_cstr(struct gopam_rd *r, int *isnull)
{
	int32_t n;
	const unsigned char *p = rd_bytes(r, &n);
	*isnull = p == NULL;
	if (p == NULL)
		return NULL;
	if (memchr(p, 0, (size_t)n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (s == NULL) {
		r->bad = 1;
		return NULL;
	}
	memcpy(s, p, (size_t)n);
	s[n] = 0;
	return s;
}

static void free_cstr(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

struct gopam_conn {
	int fd;
	pid_t pid;     /* the helper */
	pid_t owner;   /* the process that started it (its parent) */
	unsigned mask; /* the service functions the module implements */
	int timeout_ms;
	int broken;
};

static long gopam_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* conn_wait waits until fd is ready for ev, bounded by the connection's
 * timeout; a dead helper makes the socket ready (EOF or an error) at once. */
static int conn_wait(struct gopam_conn *c, short ev)
{
	long deadline = gopam_now_ms() + c->timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = ev};
		long left = deadline - gopam_now_ms();
		if (left < 0)
			left = 0;
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -1;
		if (errno != EINTR)
			return -1;
	}
}

static int conn_io(struct gopam_conn *c, void *d, size_t n, int out)
{
	size_t done = 0;
	while (done < n) {
		if (conn_wait(c, out ? POLLOUT : POLLIN) < 0)
			return -1;
		ssize_t k = out ? send(c->fd, (char *)d + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT)
				: recv(c->fd, (char *)d + done, n - done, MSG_DONTWAIT);
		if (k > 0) {
			done += (size_t)k;
			continue;
		}
		if (k == 0)
			return -1; /* the helper is gone */
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
	}
	return 0;
}

static int conn_send(struct gopam_conn *c, struct gopam_buf *b)
{
	if (c->broken || b->oom)
		return -1;
	uint32_t n = (uint32_t)b->len;
	if (conn_io(c, &n, 4, 1) < 0 || conn_io(c, b->p, b->len, 1) < 0) {
		c->broken = 1;
		return -1;
	}
	return 0;
}

/* conn_recv reads one message into a malloc'd buffer (wiped by the caller). */
static int conn_recv(struct gopam_conn *c, struct gopam_buf *b)
{
	uint32_t n;
	if (c->broken || conn_io(c, &n, 4, 0) < 0 || n == 0 || n > GOPAM_MAX_MSG) {
		c->broken = 1;
		return -1;
	}
	b->p = malloc(n);
	if (b->p == NULL) {
		c->broken = 1;
		return -1;
	}
	b->cap = b->len = n;
	if (conn_io(c, b->p, n, 0) < 0) {
		c->broken = 1;
		return -1;
	}
	return 0;
}

/* conn_reap ends the helper: it waits (bounded) for it to close its end,
 * then reaps it, killing it if it is still there. Only the helper's parent
 * can reap it; a forked child just drops its copy of the socket. */
static void conn_reap(struct gopam_conn *c)
{
	if (c->fd >= 0) {
		if (getpid() == c->owner) {
			unsigned char tmp[64];
			while (!c->broken && conn_wait(c, POLLIN) == 0 && recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT) > 0) {
			}
		}
		close(c->fd);
		c->fd = -1;
	}
	if (c->pid > 0 && getpid() == c->owner) {
		int st;
		pid_t r = waitpid(c->pid, &st, WNOHANG);
		if (r == 0) {
			kill(c->pid, SIGKILL);
			while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
			}
		}
	}
	c->pid = 0;
}

static void gopam_logf(pam_handle_t *pamh, int prio, const char *fmt, const char *arg)
{
	char line[600];
	snprintf(line, sizeof line, fmt, arg);
	gopam_log(pamh, prio, line);
}

/* gopam_helper_path puts the helper's path in out: the helper= argument, or
 * the object's own path with ".so" replaced by "-helper". */
static int gopam_helper_path(int argc, const char **argv, char *out, size_t n)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i] != NULL && strncmp(argv[i], "helper=", 7) == 0) {
			snprintf(out, n, "%s", argv[i] + 7);
			return out[0] == '/' ? 0 : -1;
		}
	}
	size_t l = strlen(gopam_self);
	if (l == 0 || l + 8 > n)
		return -1;
	memcpy(out, gopam_self, l + 1);
	if (l > 3 && strcmp(out + l - 3, ".so") == 0)
		out[l - 3] = 0;
	strcat(out, "-helper");
	return 0;
}

static int gopam_timeout_ms(int argc, const char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i] != NULL && strncmp(argv[i], "gopam_timeout=", 14) == 0) {
			long s = strtol(argv[i] + 14, NULL, 10);
			if (s > 0 && s < 86400)
				return (int)(s * 1000);
		}
	}
	return 120 * 1000;
}

static void gopam_conn_cleanup(pam_handle_t *pamh, void *data, int status);

/* The mask of the last helper started in this process, so that a later
 * call of a function the module lacks answers without starting a helper. */
static pthread_mutex_t gopam_mask_mu = PTHREAD_MUTEX_INITIALIZER;
static char gopam_mask_path[4096];
static unsigned gopam_mask_seen;

static void gopam_remember_mask(const char *path, unsigned mask)
{
	pthread_mutex_lock(&gopam_mask_mu);
	snprintf(gopam_mask_path, sizeof gopam_mask_path, "%s", path);
	gopam_mask_seen = mask;
	pthread_mutex_unlock(&gopam_mask_mu);
}

/* gopam_lacks reports whether the helper at path is known not to
 * implement op. */
static int gopam_lacks(int op, int argc, const char **argv)
{
	char path[4096];
	int lacks = 0;
	if (gopam_helper_path(argc, argv, path, sizeof path) < 0)
		return 0;
	pthread_mutex_lock(&gopam_mask_mu);
	if (gopam_mask_path[0] != 0 && strcmp(path, gopam_mask_path) == 0)
		lacks = !(gopam_mask_seen & (1u << op));
	pthread_mutex_unlock(&gopam_mask_mu);
	return lacks;
}

extern char **environ;

/* gopam_spawn starts the helper with its end of a socketpair as fd 3 and
 * reads its hello (the mask of implemented functions). */
static struct gopam_conn *gopam_spawn(pam_handle_t *pamh, const char *path, int timeout_ms)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		gopam_logf(pamh, LOG_ERR, "gopam: socketpair: %s", strerror(errno));
		return NULL;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *args[] = {(char *)path, (char *)GOPAM_HELPER_ARG, NULL};
	char *env[] = {(char *)"GOTRACEBACK=single", NULL};
	pid_t pid;
	int err = posix_spawn(&pid, path, &fa, &at, args, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (err != 0) {
		close(sv[0]);
		char line[600];
		snprintf(line, sizeof line, "gopam: cannot start the module's helper %.400s: %s", path, strerror(err));
		gopam_log(pamh, LOG_ERR, line);
		return NULL;
	}
	struct gopam_conn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return NULL;
	}
	c->fd = sv[0];
	c->pid = pid;
	c->owner = getpid();
	c->timeout_ms = timeout_ms;
	struct gopam_buf in = {0};
	if (conn_recv(c, &in) < 0) {
		buf_free(&in);
		gopam_logf(pamh, LOG_ERR, "gopam: the module's helper %.400s did not start", path);
		conn_reap(c);
		free(c);
		return NULL;
	}
	struct gopam_rd r = {in.p, in.len, 1, 0};
	int32_t version = in.len > 0 && in.p[0] == GOPAM_M_HELLO ? rd_int(&r) : -1;
	c->mask = (unsigned)rd_int(&r);
	buf_free(&in);
	if (r.bad || version != GOPAM_PROTOCOL) {
		gopam_logf(pamh, LOG_ERR, "gopam: the module's helper %.400s speaks another protocol", path);
		conn_reap(c);
		free(c);
		return NULL;
	}
	gopam_remember_mask(path, c->mask);
	return c;
}

/* gopam_conn_for returns the helper of this transaction, starting it on
 * first use. It is kept as module data, so pam_end ends it. */
static struct gopam_conn *gopam_conn_for(pam_handle_t *pamh, int argc, const char **argv, int *rc)
{
	char path[4096], key[4200];
	*rc = PAM_SYSTEM_ERR;
	if (gopam_helper_path(argc, argv, path, sizeof path) < 0) {
		gopam_log(pamh, LOG_ERR, "gopam: no helper for the module (helper= must be an absolute path)");
		return NULL;
	}
	snprintf(key, sizeof key, "gopam-helper:%s", path);
	const void *d = NULL;
	if (pam_get_data(pamh, key, &d) == PAM_SUCCESS && d != NULL) {
		struct gopam_conn *c = (struct gopam_conn *)d;
		if (!c->broken)
			return c;
	}
	if (access(path, X_OK) != 0) {
		gopam_logf(pamh, LOG_ERR, "gopam: the module's helper %.400s is not an executable file", path);
		return NULL;
	}
	struct gopam_conn *c = gopam_spawn(pamh, path, gopam_timeout_ms(argc, argv));
	if (c == NULL)
		return NULL;
	if (pam_set_data(pamh, key, c, gopam_conn_cleanup) != PAM_SUCCESS) {
		conn_reap(c);
		free(c);
		return NULL;
	}
	*rc = PAM_SUCCESS;
	return c;
}

/* gopam_serve answers one request of the helper; it returns -1 when the
 * request is malformed or the reply cannot be sent. */
static int gopam_serve(pam_handle_t *pamh, struct gopam_conn *c, struct gopam_rd *r, int type)
{
	struct gopam_buf out = {0};
	int rc = PAM_SYSTEM_ERR, isnull;
	buf_put(&out, &(unsigned char){GOPAM_M_REPLY}, 1);
	switch (type) {
	case GOPAM_M_GET_ITEM: {
		int item = rd_int(r);
		const char *v = NULL;
		if (r->bad)
			break;
		rc = gopam_get_item(pamh, item, &v);
		buf_int(&out, rc);
		buf_str(&out, v);
		break;
	}
	case GOPAM_M_SET_ITEM: {
		int item = rd_int(r);
		char *v = rd_cstr(r, &isnull);
		if (r->bad)
			break;
		rc = gopam_set_item(pamh, item, v);
		free_cstr(v);
		buf_int(&out, rc);
		break;
	}
	case GOPAM_M_GETENV: {
		char *name = rd_cstr(r, &isnull);
		if (r->bad || isnull) {
			free_cstr(name);
			r->bad = 1;
			break;
		}
		const char *v = gopam_getenv(pamh, name);
		free_cstr(name);
		buf_int(&out, PAM_SUCCESS);
		buf_str(&out, v);
		break;
	}
	case GOPAM_M_PUTENV: {
		char *nv = rd_cstr(r, &isnull);
		if (r->bad || isnull) {
			free_cstr(nv);
			r->bad = 1;
			break;
		}
		rc = gopam_putenv(pamh, nv);
		free_cstr(nv);
		buf_int(&out, rc);
		break;
	}
	case GOPAM_M_ENVLIST: {
		char **env = gopam_getenvlist(pamh);
		int n = 0;
		while (env != NULL && env[n] != NULL)
			n++;
		buf_int(&out, env == NULL ? PAM_BUF_ERR : PAM_SUCCESS);
		buf_int(&out, n);
		for (int i = 0; i < n; i++)
			buf_str(&out, env[i]);
		gopam_free_envlist(env);
		break;
	}
	case GOPAM_M_CONV: {
		int n = rd_int(r);
		if (r->bad || n <= 0 || n > PAM_MAX_NUM_MSG) {
			r->bad = 1;
			break;
		}
		int styles[PAM_MAX_NUM_MSG];
		char *texts[PAM_MAX_NUM_MSG] = {0};
		for (int i = 0; i < n; i++) {
			styles[i] = rd_int(r);
			int32_t len;
			const unsigned char *p = rd_bytes(r, &len);
			if (r->bad)
				break;
			/* Texts and binary packets are both copied with a NUL after
			 * them; a packet carries its own length. */
			texts[i] = malloc((size_t)len + 1);
			if (texts[i] == NULL) {
				r->bad = 1;
				break;
			}
			if (p != NULL)
				memcpy(texts[i], p, (size_t)len);
			texts[i][len] = 0;
		}
		struct pam_response *resp = NULL;
		if (!r->bad)
			rc = gopam_converse(pamh, n, styles, (const char *const *)texts, &resp);
		for (int i = 0; i < n; i++)
			free(texts[i]);
		if (r->bad)
			break;
		buf_int(&out, rc);
		buf_int(&out, rc == PAM_SUCCESS ? n : 0);
		for (int i = 0; rc == PAM_SUCCESS && i < n; i++) {
			const char *s = gopam_resp(resp, i);
			int32_t len = s == NULL ? 0 : (int32_t)strlen(s);
#ifdef PAM_BINARY_PROMPT
			if (s != NULL && styles[i] == PAM_BINARY_PROMPT) {
				const unsigned char *p = (const unsigned char *)s;
				len = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
				if (len < 5 || len > (int32_t)(GOPAM_MAX_MSG / 2))
					len = 0, s = NULL;
			}
#endif
			buf_bytes(&out, s, len);
		}
		gopam_free_responses(resp, n, styles);
		break;
	}
	case GOPAM_M_GET_USER: {
		char *prompt = rd_cstr(r, &isnull);
		const char *user = NULL;
		if (r->bad)
			break;
		rc = gopam_get_user(pamh, &user, prompt);
		free_cstr(prompt);
		buf_int(&out, rc);
		buf_str(&out, rc == PAM_SUCCESS ? user : NULL);
		break;
	}
	case GOPAM_M_GET_AUTHTOK: {
		int item = rd_int(r);
		char *prompt = rd_cstr(r, &isnull);
		const char *tok = NULL;
		if (r->bad)
			break;
		rc = gopam_get_authtok(pamh, item, &tok, prompt);
		free_cstr(prompt);
		buf_int(&out, rc);
		buf_str(&out, rc == PAM_SUCCESS ? tok : NULL);
		break;
	}
	case GOPAM_M_SYSLOG: {
		int prio = rd_int(r);
		char *msg = rd_cstr(r, &isnull);
		if (r->bad || isnull) {
			free_cstr(msg);
			r->bad = 1;
			break;
		}
		gopam_log(pamh, prio & LOG_PRIMASK, msg);
		free_cstr(msg);
		buf_int(&out, PAM_SUCCESS);
		break;
	}
	case GOPAM_M_FAIL_DELAY: {
		int usec = rd_int(r);
		if (r->bad)
			break;
		buf_int(&out, gopam_fail_delay(pamh, (unsigned)usec));
		break;
	}
	default:
		r->bad = 1;
	}
	int ret = -1;
	if (!r->bad)
		ret = conn_send(c, &out);
	buf_free(&out);
	return ret;
}

/* gopam_relay runs one service function in the helper: it sends the call,
 * serves the helper's requests until it answers, and returns the answer.
 * Any failure of the helper or of the protocol is PAM_SYSTEM_ERR, logged. */
static int gopam_relay(int op, pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	int rc;
	if (gopam_lacks(op, argc, argv))
		return PAM_IGNORE;
	struct gopam_conn *c = gopam_conn_for(pamh, argc, argv, &rc);
	if (c == NULL)
		return rc;
	if (!(c->mask & (1u << op)))
		return PAM_IGNORE;
	struct gopam_buf out = {0};
	buf_put(&out, &(unsigned char){GOPAM_M_CALL}, 1);
	buf_int(&out, op);
	buf_int(&out, (int32_t)gopam_portable_flags(op, flags));
	buf_int(&out, gopam_impl());
	buf_int(&out, argc);
	for (int i = 0; i < argc; i++)
		buf_str(&out, argv[i] != NULL ? argv[i] : "");
	int sent = conn_send(c, &out);
	buf_free(&out);
	if (sent < 0)
		goto broken;
	for (;;) {
		struct gopam_buf in = {0};
		if (conn_recv(c, &in) < 0) {
			buf_free(&in);
			goto broken;
		}
		struct gopam_rd r = {in.p, in.len, 1, 0};
		int type = in.p[0];
		if (type == GOPAM_M_RETURN) {
			rc = rd_int(&r);
			buf_free(&in);
			if (r.bad)
				goto broken;
			return rc;
		}
		int ok = gopam_serve(pamh, c, &r, type);
		buf_free(&in);
		if (ok < 0)
			goto broken;
	}
broken:
	c->broken = 1;
	gopam_log(pamh, LOG_ERR, "gopam: the module's helper failed (it died, timed out or broke the protocol)");
	return PAM_SYSTEM_ERR;
}

/* gopam_conn_cleanup runs at pam_end (or when the data is replaced): it
 * tells the helper the transaction ended, so that the module's data
 * cleanups run there, and ends the helper. A forked child that ends the
 * transaction with PAM_DATA_SILENT leaves the helper to its parent. */
static void gopam_conn_cleanup(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	struct gopam_conn *c = data;
	if (c == NULL)
		return;
	int silent = 0;
#ifdef PAM_DATA_SILENT
	silent = (status & PAM_DATA_SILENT) != 0;
#endif
	if (!c->broken && !(silent && getpid() != c->owner)) {
		struct gopam_buf out = {0};
		buf_put(&out, &(unsigned char){GOPAM_M_END}, 1);
		int st = status;
#ifdef PAM_DATA_SILENT
		st &= ~(PAM_DATA_SILENT | PAM_DATA_REPLACE);
#endif
		buf_int(&out, st);
		buf_int(&out, silent);
		if (conn_send(c, &out) == 0) {
			struct gopam_buf in = {0};
			conn_recv(c, &in); /* GOPAM_M_DONE, or EOF if the helper is gone */
			buf_free(&in);
		}
		buf_free(&out);
	}
	conn_reap(c);
	free(c);
}

#pragma GCC visibility pop

/* ---- the entry points. */

#ifdef GOPAM_INPROCESS
/* Filled by the Go code at registration; until then gopamMask asks Go. */
static volatile unsigned gopam_mask;
static volatile int gopam_ready;

void gopam_set_mask(unsigned mask)
{
	gopam_mask = mask;
	__atomic_store_n(&gopam_ready, 1, __ATOMIC_RELEASE);
}

extern int gopamCall(int op, pam_handle_t *pamh, unsigned flags, int argc, char **argv, int impl);
extern unsigned gopamMask(void);
extern void gopamCleanup(uintptr_t h, int status, int replaced, int silent);

/* gopam_data_cleanup is the cleanup of module data the Go code set; it
 * enters Go only where the module's Go code may run. Elsewhere the value is
 * left to the process that set it. */
static void gopam_data_cleanup(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	if (getpid() != gopam_load_pid || gopam_go_host)
		return;
	int replaced = 0, silent = 0;
#ifdef PAM_DATA_SILENT
	replaced = (status & PAM_DATA_REPLACE) != 0;
	silent = (status & PAM_DATA_SILENT) != 0;
	status &= ~(PAM_DATA_SILENT | PAM_DATA_REPLACE);
#endif
	gopamCleanup((uintptr_t)data, status, replaced, silent);
}

int gopam_set_data(pam_handle_t *pamh, const char *name, uintptr_t h)
{
	return pam_set_data(pamh, name, (void *)h, gopam_data_cleanup);
}

int gopam_get_data(pam_handle_t *pamh, const char *name, uintptr_t *out)
{
	const void *d = NULL;
	int rc = pam_get_data(pamh, name, &d);
	*out = rc == PAM_SUCCESS ? (uintptr_t)d : 0;
	return rc;
}
#endif

static int gopam_entry(int op, pam_handle_t *pamh, int flags, int argc, const char **argv)
{
#ifdef GOPAM_INPROCESS
	int forked = getpid() != gopam_load_pid;
	if (!forked && !gopam_go_host) {
		unsigned mask = __atomic_load_n(&gopam_ready, __ATOMIC_ACQUIRE) ? gopam_mask : gopamMask();
		if (!(mask & (1u << op)))
			return PAM_IGNORE;
		return gopamCall(op, pamh, gopam_portable_flags(op, flags), argc, (char **)argv, gopam_impl());
	}
	/* Go's threads did not survive the fork, or another Go runtime owns
	 * the process: the module's Go code runs in its helper instead. */
	if (__atomic_load_n(&gopam_ready, __ATOMIC_ACQUIRE) && !(gopam_mask & (1u << op)))
		return PAM_IGNORE;
#endif
	return gopam_relay(op, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_AUTHENTICATE, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_SETCRED, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_ACCT_MGMT, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_OPEN_SESSION, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_CLOSE_SESSION, pamh, flags, argc, argv);
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return gopam_entry(GOPAM_OP_CHAUTHTOK, pamh, flags, argc, argv);
}
