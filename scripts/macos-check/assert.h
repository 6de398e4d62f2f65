/* macOS build check only (see README.md here). */
#pragma once
#define assert(x) ((void)0)
