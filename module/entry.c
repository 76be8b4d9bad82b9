//go:build cgo

/* The in-process mode's C entry points: the shim's code, compiled into the
 * Go c-shared library with the in-process path switched on. */
#define GOPAM_INPROCESS 1
#include "cshim/gopam_shim.c"
