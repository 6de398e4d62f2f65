/* macOS build check only (see README.md here): the declarations compiled code uses. */
#pragma once
#include <stddef.h>
void abort(void);
void *malloc(size_t);
void free(void *);
