/* gopam_shim.h: constants of the protocol between a gopam module's C side
 * and its Go code. module/proto.go holds the same numbers. */
#ifndef GOPAM_SHIM_H
#define GOPAM_SHIM_H

#include <stdint.h>
#include <security/pam_appl.h>

#define GOPAM_PROTOCOL 1
#define GOPAM_HELPER_ARG "--gopam-module-helper"
#define GOPAM_MAX_MSG (1u << 20)

/* The service functions, as bit numbers of the mask of implemented ones. */
enum {
	GOPAM_OP_AUTHENTICATE,
	GOPAM_OP_SETCRED,
	GOPAM_OP_ACCT_MGMT,
	GOPAM_OP_OPEN_SESSION,
	GOPAM_OP_CLOSE_SESSION,
	GOPAM_OP_CHAUTHTOK,
};

/* Portable flag bits (module.Flags). */
enum {
	GOPAM_F_SILENT = 1 << 0,
	GOPAM_F_DISALLOW_NULL_AUTHTOK = 1 << 1,
	GOPAM_F_ESTABLISH_CRED = 1 << 2,
	GOPAM_F_DELETE_CRED = 1 << 3,
	GOPAM_F_REINITIALIZE_CRED = 1 << 4,
	GOPAM_F_REFRESH_CRED = 1 << 5,
	GOPAM_F_CHANGE_EXPIRED_AUTHTOK = 1 << 6,
	GOPAM_F_PRELIM_CHECK = 1 << 7,
	GOPAM_F_UPDATE_AUTHTOK = 1 << 8,
};

enum { GOPAM_IMPL_LINUX = 1, GOPAM_IMPL_OPENPAM = 2 };

/* Message types. */
enum {
	/* C to helper */
	GOPAM_M_CALL = 1,  /* op, flags, impl, argc, argv... */
	GOPAM_M_END = 2,   /* status, silent */
	GOPAM_M_REPLY = 3, /* code, then the request's results */
	/* helper to C */
	GOPAM_M_HELLO = 9,        /* protocol, mask */
	GOPAM_M_RETURN = 10,      /* code */
	GOPAM_M_GET_ITEM = 11,    /* item -> code, value */
	GOPAM_M_SET_ITEM = 12,    /* item, value -> code */
	GOPAM_M_GETENV = 13,      /* name -> code, value */
	GOPAM_M_PUTENV = 14,      /* name=value -> code */
	GOPAM_M_ENVLIST = 15,     /* -> code, n, entries... */
	GOPAM_M_CONV = 16,        /* n, (style, text)... -> code, n, responses... */
	GOPAM_M_GET_USER = 17,    /* prompt -> code, user */
	GOPAM_M_GET_AUTHTOK = 18, /* item, prompt -> code, token */
	GOPAM_M_SYSLOG = 19,      /* priority, text -> code */
	GOPAM_M_FAIL_DELAY = 20,  /* usec -> code */
	GOPAM_M_DONE = 21,        /* the reply to END */
};

#endif
