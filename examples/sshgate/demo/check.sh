#!/bin/sh
# pam_exec runs this with the password on standard input (no trailing
# newline) and the user in PAM_USER. Only shell builtins: PATH is not set.
IFS= read -r pw || true
[ "$PAM_USER" = demo ] && [ "$pw" = gopam-demo ]
