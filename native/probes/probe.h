/* Shared helpers for the mount probes: one result line (`ok NAME: ...` or
 * `FAIL NAME: ...`), exit 0/1, a watchdog, and removal of every file the probe
 * made in its directory (also on failure and on the watchdog). */
#ifndef DEDUPFS_PROBE_H
#define DEDUPFS_PROBE_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Not every probe uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define PROBE_PAGE 4096
#define PROBE_MAX_FILES 16
#define PROBE_TIMEOUT_SECONDS 60

static const char *probe_name = "probe";
static char probe_dir[2048];
static char probe_files[PROBE_MAX_FILES][2304];
static int probe_nfiles;
static char probe_notes[4096]; /* accumulated "key=value" notes for the ok line */

static void probe_cleanup(void)
{
	for (int i = 0; i < probe_nfiles; i++)
		unlink(probe_files[i]); /* async-signal-safe */
}

/* Prints `FAIL NAME: message (notes so far)` and exits 1 after removing our files. */
__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	printf("FAIL %s: ", probe_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (probe_notes[0])
		printf(" [before that: %s]", probe_notes);
	printf("\n");
	fflush(stdout);
	probe_cleanup();
	exit(1);
}

/* Appends a note to the final ok line. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	size_t len = strlen(probe_notes);
	if (len + 3 >= sizeof(probe_notes))
		return;
	if (len) {
		strcpy(probe_notes + len, "; ");
		len += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(probe_notes + len, sizeof(probe_notes) - len, fmt, ap);
	va_end(ap);
}

__attribute__((noreturn)) static void pass(void)
{
	probe_cleanup();
	printf("ok %s: %s\n", probe_name, probe_notes[0] ? probe_notes : "all checks passed");
	fflush(stdout);
	exit(0);
}

static void probe_timeout(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL probe: timed out (watchdog)\n";
	ssize_t r = write(1, msg, sizeof(msg) - 1);
	(void)r;
	probe_cleanup();
	_exit(1);
}

/* Parses `NAME DIR`, arms the watchdog. */
static void probe_init(const char *name, int argc, char **argv)
{
	probe_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		printf("FAIL %s: usage: %s DIR\n", name, argv[0]);
		exit(1);
	}
	snprintf(probe_dir, sizeof(probe_dir), "%s", argv[1]);
	struct stat st;
	if (stat(probe_dir, &st) != 0 || !S_ISDIR(st.st_mode))
		fail("%s is not a directory", probe_dir);
	signal(SIGALRM, probe_timeout);
	alarm(PROBE_TIMEOUT_SECONDS);
}

/* Returns DIR/probe-NAME-PID-TAG and remembers it for removal. */
static const char *probe_path(const char *tag)
{
	if (probe_nfiles >= PROBE_MAX_FILES)
		fail("internal: too many files");
	char *p = probe_files[probe_nfiles];
	snprintf(p, sizeof(probe_files[0]), "%s/probe-%s-%d-%s", probe_dir, probe_name, (int)getpid(), tag);
	unlink(p);
	probe_nfiles++;
	return p;
}

static int open_new(const char *path, int extra_flags)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | extra_flags, 0644);
	if (fd < 0)
		fail("open(%s): %s", path, strerror(errno));
	return fd;
}

/* Deterministic, never-zero pattern byte for (seed, offset). */
static inline uint8_t pat(unsigned seed, uint64_t off)
{
	return (uint8_t)(1 + ((off % 251) * 7 + seed * 31 + (off >> 12)) % 255);
}

static void fill(uint8_t *buf, size_t len, unsigned seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, off + i);
}

/* Index of the first byte where a and b differ, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

static void must_pwrite(int fd, const void *buf, size_t len, off_t off, const char *what)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0)
			fail("%s: pwrite(%zu @ %lld): %s", what, len - done, (long long)(off + (off_t)done), strerror(errno));
		if (n == 0)
			fail("%s: pwrite returned 0", what);
		done += (size_t)n;
	}
}

/* Reads up to len bytes (stops at EOF); returns the count. */
static size_t must_pread(int fd, void *buf, size_t len, off_t off, const char *what)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0)
			fail("%s: pread(%zu @ %lld): %s", what, len - done, (long long)(off + (off_t)done), strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* Reads [off, off+len) and fails unless it equals want. */
static void expect_bytes(int fd, off_t off, const uint8_t *want, size_t len, const char *what)
{
	uint8_t *got = malloc(len ? len : 1);
	if (!got)
		fail("out of memory");
	size_t n = must_pread(fd, got, len, off, what);
	if (n != len)
		fail("%s: read %zu bytes at %lld, expected %zu", what, n, (long long)off, len);
	long d = first_diff(want, got, len);
	if (d >= 0)
		fail("%s: byte at offset %lld is 0x%02x, expected 0x%02x", what, (long long)off + d, got[d], want[d]);
	free(got);
}

static off_t file_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		fail("fstat: %s", strerror(errno));
	return st.st_size;
}

static void *xmalloc(size_t len)
{
	void *p = malloc(len);
	if (!p)
		fail("out of memory");
	return p;
}

#endif
