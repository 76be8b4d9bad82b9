/* Prints "token number strerror" for every PAM return code, as the headers
 * and the running libpam define them: the oracle gopam's tables are checked
 * against. */
#include <stdio.h>
#include <security/pam_appl.h>
#if __has_include(<security/openpam.h>)
#include <security/openpam.h>
#endif

#define C(tok, val) printf("%s %d %s\n", tok, val, pam_strerror(NULL, val))

int main(void) {
	C("success", PAM_SUCCESS); C("open_err", PAM_OPEN_ERR);
	C("symbol_err", PAM_SYMBOL_ERR); C("service_err", PAM_SERVICE_ERR);
	C("system_err", PAM_SYSTEM_ERR); C("buf_err", PAM_BUF_ERR);
	C("perm_denied", PAM_PERM_DENIED); C("auth_err", PAM_AUTH_ERR);
	C("cred_insufficient", PAM_CRED_INSUFFICIENT);
	C("authinfo_unavail", PAM_AUTHINFO_UNAVAIL);
	C("user_unknown", PAM_USER_UNKNOWN); C("maxtries", PAM_MAXTRIES);
	C("new_authtok_reqd", PAM_NEW_AUTHTOK_REQD);
	C("acct_expired", PAM_ACCT_EXPIRED); C("session_err", PAM_SESSION_ERR);
	C("cred_unavail", PAM_CRED_UNAVAIL); C("cred_expired", PAM_CRED_EXPIRED);
	C("cred_err", PAM_CRED_ERR); C("no_module_data", PAM_NO_MODULE_DATA);
	C("conv_err", PAM_CONV_ERR); C("authtok_err", PAM_AUTHTOK_ERR);
	C("authtok_recover_err", PAM_AUTHTOK_RECOVERY_ERR);
	C("authtok_lock_busy", PAM_AUTHTOK_LOCK_BUSY);
	C("authtok_disable_aging", PAM_AUTHTOK_DISABLE_AGING);
	C("try_again", PAM_TRY_AGAIN); C("ignore", PAM_IGNORE);
	C("abort", PAM_ABORT); C("authtok_expired", PAM_AUTHTOK_EXPIRED);
	C("module_unknown", PAM_MODULE_UNKNOWN); C("bad_item", PAM_BAD_ITEM);
#ifdef PAM_CONV_AGAIN
	C("conv_again", PAM_CONV_AGAIN); C("incomplete", PAM_INCOMPLETE);
#endif
#ifdef OPENPAM
	C("domain_unknown", PAM_DOMAIN_UNKNOWN); C("bad_handle", PAM_BAD_HANDLE);
	C("bad_feature", PAM_BAD_FEATURE); C("bad_constant", PAM_BAD_CONSTANT);
#endif
	return 0;
}
