#!/bin/sh
# pam_exec writes the password to standard input, without a newline.
IFS= read -r password || true
[ "$password" = '@PASSWORD@' ]
