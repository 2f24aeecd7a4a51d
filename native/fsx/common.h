/* Helpers shared by the random-operation programs in native/fsx (dfsx, crashwrite): a
 * seeded generator, so a failing run is reproduced by its seed alone, a monotonic clock, and
 * the size parser of their options. Each program sets fsx_prog for its error messages. */
#ifndef DEDUPFS_FSX_COMMON_H
#define DEDUPFS_FSX_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *fsx_prog = "fsx";
static uint64_t rng_state;

static uint64_t rnd(void)
{ /* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static long rnd_below(long n) { return n > 0 ? (long)(rnd() % (uint64_t)n) : 0; }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A non-negative count or size, with an optional k/K or m/M suffix; exits 2 when malformed. */
static long parse_num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	long mult = 1;
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1 << 20, end++;
	if (errno || *end || v < 0) {
		fprintf(stderr, "%s: bad %s: %s\n", fsx_prog, what, s);
		exit(2);
	}
	return (long)(v * (double)mult);
}

#endif
