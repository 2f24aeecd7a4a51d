/*
 * metabench - tiny single-threaded micro-benchmarks for FUSE transports.
 *
 *   metabench stat PATH SECONDS       loop stat(2) on PATH
 *   metabench create DIR SECONDS      loop open(DIR/f<N>, O_CREAT|O_WRONLY|
 *                                     O_EXCL, 0644), close, unlink
 *                                     (one create+close+unlink = one op)
 *   metabench randread FILE SECONDS   4 KiB pread at random 4 KiB-aligned
 *                                     offsets in the first 1 GiB (or the
 *                                     whole file if smaller), queue depth 1
 *   metabench files DIR COUNT         create COUNT empty files DIR/m<N>
 *                                     (open O_CREAT|O_EXCL + close), then
 *                                     stat(2) each, then unlink each; each
 *                                     phase timed on its own
 *
 * Prints exactly one machine-readable line on stdout, e.g.
 *   ops=612345 seconds=5.000 ops_per_sec=122469.0
 *   ops=... seconds=... ops_per_sec=... mean_us=... p99_us=...   (randread)
 *   files=10000 create_per_sec=... stat_per_sec=... unlink_per_sec=... (files)
 * Exit status 0 on success, 1 on any failed system call, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define RANGE (1ULL << 30)

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "metabench: %s %s: %s\n", what, path ? path : "",
		strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: metabench stat PATH SECONDS\n"
		"       metabench create DIR SECONDS\n"
		"       metabench randread FILE SECONDS\n"
		"       metabench files DIR COUNT\n");
	exit(2);
}

static void report(unsigned long long ops, double secs)
{
	printf("ops=%llu seconds=%.3f ops_per_sec=%.1f\n", ops, secs,
	       secs > 0 ? (double)ops / secs : 0.0);
}

static int bench_stat(const char *path, double seconds)
{
	struct stat st;
	unsigned long long ops = 0;
	double start = now_sec(), end = start + seconds, t;

	do {
		if (stat(path, &st) != 0)
			die("stat", path);
		ops++;
	} while ((t = now_sec()) < end);
	report(ops, t - start);
	return 0;
}

static int bench_create(const char *dir, double seconds)
{
	char path[4096];
	unsigned long long ops = 0;
	double start = now_sec(), end = start + seconds, t;

	do {
		int n = snprintf(path, sizeof(path), "%s/f%llu", dir, ops);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			fprintf(stderr, "metabench: path too long\n");
			return 1;
		}
		int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
		if (fd < 0)
			die("open", path);
		if (close(fd) != 0)
			die("close", path);
		if (unlink(path) != 0)
			die("unlink", path);
		ops++;
	} while ((t = now_sec()) < end);
	report(ops, t - start);
	return 0;
}

static int files_path(char *path, size_t size, const char *dir, unsigned long i)
{
	int n = snprintf(path, size, "%s/m%lu", dir, i);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "metabench: path too long\n");
		return -1;
	}
	return 0;
}

static int bench_files(const char *dir, unsigned long count)
{
	char path[4096];
	struct stat st;
	double t[4];
	unsigned long i;

	t[0] = now_sec();
	for (i = 0; i < count; i++) {
		if (files_path(path, sizeof(path), dir, i))
			return 1;
		int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
		if (fd < 0)
			die("open", path);
		if (close(fd) != 0)
			die("close", path);
	}
	t[1] = now_sec();
	for (i = 0; i < count; i++) {
		if (files_path(path, sizeof(path), dir, i))
			return 1;
		if (stat(path, &st) != 0)
			die("stat", path);
	}
	t[2] = now_sec();
	for (i = 0; i < count; i++) {
		if (files_path(path, sizeof(path), dir, i))
			return 1;
		if (unlink(path) != 0)
			die("unlink", path);
	}
	t[3] = now_sec();
	printf("files=%lu create_per_sec=%.1f stat_per_sec=%.1f unlink_per_sec=%.1f\n",
	       count, (double)count / (t[1] - t[0]), (double)count / (t[2] - t[1]),
	       (double)count / (t[3] - t[2]));
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int bench_randread(const char *file, double seconds)
{
	static char buf[BLOCK] __attribute__((aligned(BLOCK)));
	struct stat st;
	uint64_t *lat = NULL;
	size_t nlat = 0, cap = 0;
	uint64_t range, blocks, x, sum = 0;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		die("open", file);
	if (fstat(fd, &st) != 0)
		die("fstat", file);
	range = (uint64_t)st.st_size < RANGE ? (uint64_t)st.st_size : RANGE;
	blocks = range / BLOCK;
	if (blocks == 0) {
		fprintf(stderr, "metabench: %s is smaller than 4 KiB\n", file);
		return 1;
	}
	x = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;

	uint64_t start = now_ns();
	uint64_t end = start + (uint64_t)(seconds * 1e9), t0, t1 = start;
	do {
		/* xorshift64* */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		off_t off = (off_t)(((x * 0x2545F4914F6CDD1DULL) % blocks) * BLOCK);

		t0 = now_ns();
		ssize_t r = pread(fd, buf, BLOCK, off);
		t1 = now_ns();
		if (r < 0)
			die("pread", file);
		if (r != BLOCK) {
			fprintf(stderr, "metabench: short read %zd at %lld\n",
				r, (long long)off);
			return 1;
		}
		if (nlat == cap) {
			cap = cap ? cap * 2 : 65536;
			uint64_t *n = realloc(lat, cap * sizeof(*lat));
			if (!n)
				die("realloc", NULL);
			lat = n;
		}
		lat[nlat++] = t1 - t0;
		sum += t1 - t0;
	} while (t1 < end);
	close(fd);

	double secs = (double)(t1 - start) * 1e-9;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	size_t idx = (size_t)((double)nlat * 0.99);
	if (idx >= nlat)
		idx = nlat - 1;
	printf("ops=%zu seconds=%.3f ops_per_sec=%.1f mean_us=%.2f p99_us=%.2f\n",
	       nlat, secs, secs > 0 ? (double)nlat / secs : 0.0,
	       (double)sum / (double)nlat / 1000.0, (double)lat[idx] / 1000.0);
	free(lat);
	return 0;
}

int main(int argc, char *argv[])
{
	char *endp;
	double seconds;

	if (argc != 4)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "files") == 0) {
		unsigned long count = strtoul(argv[3], &endp, 10);
		if (*endp != '\0' || count == 0 || argv[3][0] == '-')
			usage();
		return bench_files(argv[2], count);
	}
	seconds = strtod(argv[3], &endp);
	if (*endp != '\0' || !(seconds > 0))
		usage();

	if (strcmp(argv[1], "stat") == 0)
		return bench_stat(argv[2], seconds);
	if (strcmp(argv[1], "create") == 0)
		return bench_create(argv[2], seconds);
	if (strcmp(argv[1], "randread") == 0)
		return bench_randread(argv[2], seconds);
	usage();
	return 2;
}
