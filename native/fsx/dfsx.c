/* dfsx: a model-based random-operation checker for DedupFs, in the spirit of
 * fsx. It keeps an in-memory reference copy of N files (default 4) in a target
 * directory and applies random operations to them, comparing every read with
 * the model:
 *
 *   write     pwrite at a random offset/length (page-aligned, page-edge,
 *             arbitrary, past EOF)
 *   read      pread + compare (including across EOF: the count must match)
 *   truncate  ftruncate to a smaller or larger size (growth reads as zeros)
 *   punch     fallocate(PUNCH_HOLE|KEEP_SIZE)
 *   keepsize  fallocate(KEEP_SIZE), also beyond EOF (size must not change)
 *   zero      fallocate(ZERO_RANGE), sometimes with KEEP_SIZE
 *   copy      copy_file_range between two files (or within one, without
 *             overlap), page-aligned or unaligned, looped over short copies
 *   mapwrite  MAP_SHARED store + msync (inside the current size)
 *   mapread   MAP_SHARED read + compare, including the zeroed tail of the
 *             last page past EOF
 *   fsync     fsync or fdatasync
 *   reopen    close and reopen the file
 *   remount   with --remount-cmd: every K ops close everything, run the shell
 *             command (e.g. unmount + remount), reopen, verify every file
 *
 * A fallocate mode the filesystem answers EOPNOTSUPP for is reported once and
 * skipped from then on. Deterministic for a given --seed (and filesystem
 * answers). On a mismatch it prints the last 50 operations, the file and the
 * offset of the first differing byte, and exits 1. Every file is verified in
 * full at the end (and after every remount). Written bytes are never zero and
 * encode the op number, so a dump tells which op wrote what.
 *
 * Exit status: 0 ok, 1 mismatch or failed system call, 2 usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PAGE 4096L
#define LOG_TAIL 50
#define MAX_FILES 64

enum op {
	OP_WRITE, OP_READ, OP_TRUNCATE, OP_PUNCH, OP_KEEPSIZE, OP_ZERO, OP_COPY,
	OP_MAPWRITE, OP_MAPREAD, OP_FSYNC, OP_REOPEN, OP_COUNT
};
static const char *op_names[OP_COUNT] = {"write", "read", "truncate", "punch", "keepsize", "zero",
					 "copy", "mapwrite", "mapread", "fsync", "reopen"};
static const int op_weight[OP_COUNT] = {22, 16, 6, 6, 3, 4, 12, 8, 8, 3, 3};

struct file {
	char path[4096];
	int fd;
	uint8_t *model;
	long size;
};

static struct {
	const char *dir;
	int nfiles;
	unsigned long long seed;
	long ops;
	double seconds;
	long maxsize;
	long maxlen;
	const char *remount_cmd;
	long remount_every;
	int verbose;
	int keep;
	int nommap, nocopy, nofalloc;
} cfg = {.nfiles = 4, .ops = 10000, .maxsize = 1 << 22, .maxlen = 1 << 18, .remount_every = 500};

static struct file files[MAX_FILES];
static long opno;
static int unsupported[OP_COUNT]; /* fallocate modes the fs refused with EOPNOTSUPP */
static long counts[OP_COUNT], remounts;
static char oplog[LOG_TAIL][256];
static long logseq; /* entries logged so far (an op may log more than one line, e.g. remount) */
static uint8_t *scratch;

__attribute__((format(printf, 1, 2))) static void logop(const char *fmt, ...)
{
	char *slot = oplog[logseq++ % LOG_TAIL];
	int n = snprintf(slot, sizeof(oplog[0]), "%6ld ", opno);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(slot + n, sizeof(oplog[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	if (cfg.verbose)
		fprintf(stderr, "%s\n", slot);
}

static void cleanup_files(void)
{
	for (int i = 0; i < cfg.nfiles; i++) {
		if (files[i].fd >= 0)
			close(files[i].fd);
		files[i].fd = -1;
		if (!cfg.keep && files[i].path[0])
			unlink(files[i].path);
	}
}

static void dump_log(void)
{
	fprintf(stderr, "dfsx: last %d operations (seed %llu):\n", LOG_TAIL, cfg.seed);
	long first = logseq - LOG_TAIL;
	if (first < 0)
		first = 0;
	for (long i = first; i < logseq; i++)
		if (oplog[i % LOG_TAIL][0])
			fprintf(stderr, "  %s\n", oplog[i % LOG_TAIL]);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "dfsx: FAIL at op %ld: ", opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	dump_log();
	printf("FAIL dfsx seed=%llu op=%ld (details on stderr)\n", cfg.seed, opno);
	fflush(stdout);
	cleanup_files();
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "dfsx: FAIL: watchdog expired (an operation hung)\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* Pattern byte written by op o at offset off: never zero. */
static inline uint8_t pat(long o, long off) { return (uint8_t)(1 + ((unsigned long)(off % 253) + (unsigned long)o * 17) % 255); }

static void hexline(const char *label, const uint8_t *p, long base, long at, long len)
{
	fprintf(stderr, "  %s @%ld:", label, base + at);
	for (long i = at; i < at + 16 && i < len; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

/* Compares got (read from the file at off) with the model; dies on a difference. */
static void compare(struct file *f, const uint8_t *got, long off, long len, const char *how)
{
	const uint8_t *want = f->model + off;
	for (long i = 0; i < len; i++) {
		if (got[i] != want[i]) {
			long at = i & ~15L;
			fprintf(stderr, "dfsx: data mismatch in %s (%s) at offset %ld (0x%lx): got 0x%02x, expected 0x%02x"
					" (file size %ld, checked range [%ld,%ld))\n",
				f->path, how, off + i, off + i, got[i], want[i], f->size, off, off + len);
			hexline("got     ", got, off, at, len);
			hexline("expected", want, off, at, len);
			die("data mismatch in %s at offset %ld", f->path, off + i);
		}
	}
}

static void check_size(struct file *f, const char *when)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		die("fstat(%s): %s", f->path, strerror(errno));
	if (st.st_size != f->size)
		die("%s: size is %lld, model says %ld (%s)", f->path, (long long)st.st_size, f->size, when);
}

static long do_pread(struct file *f, uint8_t *buf, long len, long off)
{
	long done = 0;
	while (done < len) {
		ssize_t n = pread(f->fd, buf + done, (size_t)(len - done), off + done);
		if (n < 0)
			die("pread(%s, %ld @ %ld): %s", f->path, len - done, off + done, strerror(errno));
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static void verify_file(struct file *f, const char *when)
{
	check_size(f, when);
	for (long off = 0; off < f->size; off += cfg.maxsize) {
		long len = f->size - off < cfg.maxsize ? f->size - off : cfg.maxsize;
		long n = do_pread(f, scratch, len, off);
		if (n != len)
			die("%s: full read at %ld returned %ld of %ld bytes (%s)", f->path, off, n, len, when);
		compare(f, scratch, off, len, when);
	}
	uint8_t extra;
	if (do_pread(f, &extra, 1, f->size) != 0)
		die("%s: read at EOF (%ld) returned data (%s)", f->path, f->size, when);
}

static void open_file(struct file *f, int create)
{
	f->fd = open(f->path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (f->fd < 0)
		die("open(%s): %s", f->path, strerror(errno));
}

/* Model resize: growth reads as zeros. */
static void model_resize(struct file *f, long size)
{
	if (size > f->size)
		memset(f->model + f->size, 0, (size_t)(size - f->size));
	f->size = size;
}

/* A random offset in [0, limit], biased to page boundaries and their edges. */
static long pick_off(long limit)
{
	if (limit <= 0)
		return 0;
	switch (rnd_below(4)) {
	case 0: /* page-aligned */
		return rnd_below(limit / PAGE + 1) * PAGE;
	case 1: { /* within 3 bytes of a page boundary */
		long o = rnd_below(limit / PAGE + 1) * PAGE + rnd_below(7) - 3;
		return o < 0 ? 0 : o > limit ? limit : o;
	}
	default:
		return rnd_below(limit + 1);
	}
}

static long pick_len(long max)
{
	if (max <= 0)
		return 0;
	long l;
	switch (rnd_below(5)) {
	case 0:
		l = (rnd_below(max / PAGE) + 1) * PAGE;
		break;
	case 1:
		l = rnd_below(64) + 1;
		break;
	case 2:
		l = PAGE + rnd_below(7) - 3;
		break;
	default:
		l = rnd_below(max) + 1;
	}
	return l > max ? max : l < 1 ? 1 : l;
}

/* Offset for a write-like op: mostly within the file, sometimes past EOF. */
static long pick_target(struct file *f, long len)
{
	long room = cfg.maxsize - len;
	if (room < 0)
		return 0;
	long off;
	if (rnd_below(5) == 0) /* past EOF */
		off = f->size + rnd_below(4 * PAGE) + (rnd_below(2) ? 0 : rnd_below(16 * PAGE));
	else
		off = pick_off(f->size);
	return off > room ? room : off;
}

static void op_write(struct file *f)
{
	long len = pick_len(cfg.maxlen);
	long off = pick_target(f, len);
	logop("write    %s %ld+%ld (size %ld)", f->path + strlen(cfg.dir) + 1, off, len, f->size);
	for (long i = 0; i < len; i++)
		scratch[i] = pat(opno, off + i);
	long done = 0;
	while (done < len) {
		ssize_t n = pwrite(f->fd, scratch + done, (size_t)(len - done), off + done);
		if (n <= 0)
			die("pwrite(%s, %ld @ %ld): %s", f->path, len - done, off + done, n < 0 ? strerror(errno) : "returned 0");
		done += n;
	}
	if (off + len > f->size)
		model_resize(f, off + len);
	memcpy(f->model + off, scratch, (size_t)len);
}

static void op_read(struct file *f)
{
	long len = pick_len(cfg.maxlen);
	long off = rnd_below(8) == 0 ? f->size - rnd_below(len + 1) + rnd_below(2 * PAGE) : pick_off(f->size);
	if (off < 0)
		off = 0;
	logop("read     %s %ld+%ld (size %ld)", f->path + strlen(cfg.dir) + 1, off, len, f->size);
	long want = off >= f->size ? 0 : (off + len > f->size ? f->size - off : len);
	long n = do_pread(f, scratch, len, off);
	if (n != want)
		die("pread(%s, %ld @ %ld) returned %ld bytes, expected %ld (size %ld)", f->path, len, off, n, want, f->size);
	compare(f, scratch, off, n, "pread");
}

static void op_truncate(struct file *f)
{
	long size;
	switch (rnd_below(4)) {
	case 0:
		size = rnd_below(f->size + 1);
		break;
	case 1:
		size = rnd_below(cfg.maxsize / PAGE + 1) * PAGE;
		break;
	default:
		size = f->size + rnd_below(cfg.maxlen) - cfg.maxlen / 2;
	}
	if (size < 0)
		size = 0;
	if (size > cfg.maxsize)
		size = cfg.maxsize;
	logop("truncate %s %ld -> %ld", f->path + strlen(cfg.dir) + 1, f->size, size);
	if (ftruncate(f->fd, size) != 0)
		die("ftruncate(%s, %ld): %s", f->path, size, strerror(errno));
	model_resize(f, size);
}

/* fallocate ops: PUNCH_HOLE|KEEP_SIZE, KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE]. */
static void op_falloc(struct file *f, enum op op)
{
	long len = pick_len(cfg.maxlen);
	long off = rnd_below(6) == 0 ? f->size + rnd_below(4 * PAGE) : pick_off(f->size);
	if (off + len > cfg.maxsize)
		len = cfg.maxsize - off;
	if (len <= 0)
		return;
	int mode;
	if (op == OP_PUNCH)
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	else if (op == OP_KEEPSIZE)
		mode = FALLOC_FL_KEEP_SIZE;
	else
		mode = FALLOC_FL_ZERO_RANGE | (rnd_below(2) ? FALLOC_FL_KEEP_SIZE : 0);
	logop("%-8s %s %ld+%ld mode 0x%x (size %ld)", op_names[op], f->path + strlen(cfg.dir) + 1, off, len, mode, f->size);
	if (fallocate(f->fd, mode, off, len) != 0) {
		if (errno == EOPNOTSUPP) {
			unsupported[op] = 1;
			printf("dfsx: fallocate mode 0x%x (%s): unsupported by the filesystem, skipping it from now on\n", mode, op_names[op]);
			return;
		}
		die("fallocate(%s, 0x%x, %ld, %ld): %s", f->path, mode, off, len, strerror(errno));
	}
	long end = off + len;
	if (op == OP_PUNCH || op == OP_ZERO) {
		long zend = end < f->size ? end : f->size;
		if (zend > off)
			memset(f->model + off, 0, (size_t)(zend - off));
	}
	if (op == OP_ZERO && !(mode & FALLOC_FL_KEEP_SIZE) && end > f->size)
		model_resize(f, end);
}

static void op_copy(struct file *src, struct file *dst)
{
	int aligned = rnd_below(2);
	long len, in, out;
	if (aligned) {
		len = (rnd_below(cfg.maxlen / PAGE) + 1) * PAGE;
		in = rnd_below(src->size / PAGE + 2) * PAGE;
		out = rnd_below((dst->size + 2 * PAGE) / PAGE + 1) * PAGE;
		if (out + len > cfg.maxsize)
			out = (cfg.maxsize - len) / PAGE * PAGE;
	} else {
		len = pick_len(cfg.maxlen);
		in = pick_off(src->size + 100);
		out = pick_target(dst, len);
	}
	if (out < 0)
		out = 0;
	/* what the kernel will copy: up to the source's EOF */
	long want = in >= src->size ? 0 : (in + len > src->size ? src->size - in : len);
	if (src == dst)
		len = want; /* a copy within one file that extends it must not read back its own output */
	if (src == dst && want > 0 && in < out + want && out < in + want) {
		/* overlapping within one file is EINVAL; move the destination past it */
		out = in + want;
		if (out + want > cfg.maxsize) {
			logop("copy     (skipped: no room for a non-overlapping copy)");
			return;
		}
	}
	logop("copy     %s %ld -> %s %ld +%ld (%s; src size %ld, dst size %ld)", src->path + strlen(cfg.dir) + 1, in,
	      dst->path + strlen(cfg.dir) + 1, out, len, aligned ? "page-aligned" : "unaligned", src->size, dst->size);
	long done = 0;
	while (done < len) {
		loff_t i = in + done, o = out + done;
		ssize_t n = copy_file_range(src->fd, &i, dst->fd, &o, (size_t)(len - done), 0);
		if (n < 0)
			die("copy_file_range(%s@%ld -> %s@%ld, %ld): %s", src->path, in + done, dst->path, out + done, len - done,
			    strerror(errno));
		if (n == 0)
			break;
		if (i != in + done + n || o != out + done + n)
			die("copy_file_range advanced offsets to in=%lld out=%lld after %zd bytes", (long long)i, (long long)o, n);
		done += n;
	}
	if (done != want)
		die("copy_file_range copied %ld bytes in total, expected %ld (src size %ld)", done, want, src->size);
	if (want == 0)
		return;
	memmove(scratch, src->model + in, (size_t)want);
	if (out + want > dst->size)
		model_resize(dst, out + want);
	memcpy(dst->model + out, scratch, (size_t)want);
	check_size(dst, "copy destination");
}

static void op_mapwrite(struct file *f)
{
	if (f->size == 0) {
		logop("mapwrite %s (skipped: empty file)", f->path + strlen(cfg.dir) + 1);
		return;
	}
	long off = pick_off(f->size - 1);
	long len = pick_len(cfg.maxlen);
	if (off + len > f->size)
		len = f->size - off;
	long moff = off & ~(PAGE - 1);
	long mlen = off + len - moff;
	int flags = (int)rnd_below(3); /* 0: MS_SYNC, 1: MS_ASYNC, 2: none (munmap only) */
	logop("mapwrite %s %ld+%ld (size %ld, %s)", f->path + strlen(cfg.dir) + 1, off, len, f->size,
	      flags == 0 ? "msync MS_SYNC" : flags == 1 ? "msync MS_ASYNC" : "no msync");
	uint8_t *m = mmap(NULL, (size_t)mlen, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, moff);
	if (m == MAP_FAILED)
		die("mmap(%s, %ld @ %ld): %s", f->path, mlen, moff, strerror(errno));
	for (long i = 0; i < len; i++)
		m[off - moff + i] = pat(opno, off + i);
	if (flags < 2 && msync(m, (size_t)mlen, flags == 0 ? MS_SYNC : MS_ASYNC) != 0)
		die("msync(%s): %s", f->path, strerror(errno));
	if (munmap(m, (size_t)mlen) != 0)
		die("munmap: %s", strerror(errno));
	for (long i = 0; i < len; i++)
		f->model[off + i] = pat(opno, off + i);
}

static void op_mapread(struct file *f)
{
	if (f->size == 0) {
		logop("mapread  %s (skipped: empty file)", f->path + strlen(cfg.dir) + 1);
		return;
	}
	long off = pick_off(f->size - 1);
	long len = pick_len(cfg.maxlen);
	if (off + len > f->size)
		len = f->size - off;
	long moff = off & ~(PAGE - 1);
	/* map to the end of the last page so the zeroed tail past EOF is checked */
	long mend = ((off + len + PAGE - 1) & ~(PAGE - 1));
	long fend = (f->size + PAGE - 1) & ~(PAGE - 1);
	if (mend > fend)
		mend = fend;
	long mlen = mend - moff;
	logop("mapread  %s %ld+%ld (size %ld)", f->path + strlen(cfg.dir) + 1, off, len, f->size);
	uint8_t *m = mmap(NULL, (size_t)mlen, PROT_READ, MAP_SHARED, f->fd, moff);
	if (m == MAP_FAILED)
		die("mmap(%s, %ld @ %ld): %s", f->path, mlen, moff, strerror(errno));
	compare(f, m + (off - moff), off, len, "mmap read");
	for (long p = f->size; p < moff + mlen; p++)
		if (m[p - moff] != 0)
			die("%s: byte %ld past EOF (size %ld) in the last mapped page is 0x%02x, expected 0", f->path, p, f->size,
			    m[p - moff]);
	munmap(m, (size_t)mlen);
}

static void op_fsync(struct file *f)
{
	int data = (int)rnd_below(2);
	logop("%-8s %s", data ? "fdatasync" : "fsync", f->path + strlen(cfg.dir) + 1);
	if ((data ? fdatasync(f->fd) : fsync(f->fd)) != 0)
		die("%s(%s): %s", data ? "fdatasync" : "fsync", f->path, strerror(errno));
}

static void op_reopen(struct file *f)
{
	logop("reopen   %s", f->path + strlen(cfg.dir) + 1);
	if (close(f->fd) != 0)
		die("close(%s): %s", f->path, strerror(errno));
	open_file(f, 0);
}

static void remount(void)
{
	logop("remount  `%s`", cfg.remount_cmd);
	for (int i = 0; i < cfg.nfiles; i++) {
		if (close(files[i].fd) != 0)
			die("close(%s) before remount: %s", files[i].path, strerror(errno));
		files[i].fd = -1;
	}
	fflush(stdout);
	int st = system(cfg.remount_cmd);
	if (st == -1)
		die("system(%s): %s", cfg.remount_cmd, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("remount command `%s` failed (status 0x%x)", cfg.remount_cmd, st);
	remounts++;
	for (int i = 0; i < cfg.nfiles; i++) {
		open_file(&files[i], 0);
		verify_file(&files[i], "after remount");
	}
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: dfsx [options] DIR\n"
		"  -n, --files N          number of files (default 4, at most %d)\n"
		"  -S, --seed N           random seed (default: time-based, printed)\n"
		"  -N, --ops N            number of operations (default 10000; 0 = no limit)\n"
		"  -t, --seconds S        stop after S seconds (whichever of --ops/--seconds comes first)\n"
		"  -s, --max-size BYTES   largest file size (default 4 MiB)\n"
		"  -l, --max-len BYTES    largest single I/O (default 256 KiB)\n"
		"  -r, --remount-cmd CMD  shell command run every K ops with all files closed\n"
		"                         (e.g. unmount + remount); every file is verified after it\n"
		"  -k, --remount-every K  (default 500)\n"
		"      --no-mmap --no-copy --no-fallocate   leave those operations out\n"
		"      --keep             keep the files (default: removed, also on failure)\n"
		"  -v, --verbose          log every op on stderr\n",
		MAX_FILES);
}

int main(int argc, char **argv)
{
	fsx_prog = "dfsx";
	static const struct option longopts[] = {
		{"files", 1, 0, 'n'},        {"seed", 1, 0, 'S'},          {"ops", 1, 0, 'N'},
		{"seconds", 1, 0, 't'},      {"max-size", 1, 0, 's'},      {"max-len", 1, 0, 'l'},
		{"remount-cmd", 1, 0, 'r'},  {"remount-every", 1, 0, 'k'}, {"no-mmap", 0, 0, 'M'},
		{"no-copy", 0, 0, 'C'},      {"no-fallocate", 0, 0, 'F'},  {"keep", 0, 0, 'K'},
		{"verbose", 0, 0, 'v'},      {"help", 0, 0, 'h'},          {0, 0, 0, 0}};
	int have_seed = 0, c;
	while ((c = getopt_long(argc, argv, "n:S:N:t:s:l:r:k:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': cfg.nfiles = (int)parse_num(optarg, "--files"); break;
		case 'S': cfg.seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 'N': cfg.ops = parse_num(optarg, "--ops"); break;
		case 't': cfg.seconds = strtod(optarg, NULL); break;
		case 's': cfg.maxsize = parse_num(optarg, "--max-size"); break;
		case 'l': cfg.maxlen = parse_num(optarg, "--max-len"); break;
		case 'r': cfg.remount_cmd = optarg; break;
		case 'k': cfg.remount_every = parse_num(optarg, "--remount-every"); break;
		case 'M': cfg.nommap = 1; break;
		case 'C': cfg.nocopy = 1; break;
		case 'F': cfg.nofalloc = 1; break;
		case 'K': cfg.keep = 1; break;
		case 'v': cfg.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	cfg.dir = argv[optind];
	if (cfg.nfiles < 1 || cfg.nfiles > MAX_FILES || cfg.maxsize < 2 * PAGE || cfg.maxlen < 1 ||
	    cfg.maxlen > cfg.maxsize / 2 || cfg.remount_every < 1 || (cfg.ops == 0 && cfg.seconds <= 0)) {
		fprintf(stderr, "dfsx: bad options (files 1..%d, max-size >= 8192, 1 <= max-len <= max-size/2, "
				"remount-every >= 1, and a bound: --ops or --seconds)\n", MAX_FILES);
		return 2;
	}
	if (!have_seed)
		cfg.seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 16);
	rng_state = cfg.seed;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A hung operation must not hang the caller forever. */
	signal(SIGALRM, on_alarm);
	if (cfg.seconds > 0)
		alarm((unsigned)cfg.seconds + 300);

	scratch = malloc((size_t)cfg.maxsize + 1);
	if (!scratch) {
		fprintf(stderr, "dfsx: out of memory\n");
		return 1;
	}
	for (int i = 0; i < cfg.nfiles; i++) {
		files[i].fd = -1;
		files[i].model = calloc((size_t)cfg.maxsize, 1);
		if (!files[i].model) {
			fprintf(stderr, "dfsx: out of memory\n");
			return 1;
		}
		snprintf(files[i].path, sizeof(files[i].path), "%s/dfsx-%d-%d", cfg.dir, (int)getpid(), i);
		open_file(&files[i], 1);
	}
	if (cfg.nommap)
		unsupported[OP_MAPWRITE] = unsupported[OP_MAPREAD] = 1;
	if (cfg.nocopy)
		unsupported[OP_COPY] = 1;
	if (cfg.nofalloc)
		unsupported[OP_PUNCH] = unsupported[OP_KEEPSIZE] = unsupported[OP_ZERO] = 1;
	printf("dfsx: seed=%llu files=%d ops=%ld seconds=%g max-size=%ld max-len=%ld dir=%s%s%s\n", cfg.seed, cfg.nfiles,
	       cfg.ops, cfg.seconds, cfg.maxsize, cfg.maxlen, cfg.dir, cfg.remount_cmd ? " remount-cmd=" : "",
	       cfg.remount_cmd ? cfg.remount_cmd : "");

	double start = now();
	long done = 0;
	for (opno = 0; cfg.ops == 0 || opno < cfg.ops; opno++) {
		if (cfg.seconds > 0 && (opno & 15) == 0 && now() - start >= cfg.seconds)
			break;
		if (cfg.remount_cmd && opno > 0 && opno % cfg.remount_every == 0)
			remount();
		int total = 0;
		for (int k = 0; k < OP_COUNT; k++)
			total += unsupported[k] ? 0 : op_weight[k];
		long r = rnd_below(total);
		enum op op = OP_WRITE;
		for (int k = 0; k < OP_COUNT; k++) {
			if (unsupported[k])
				continue;
			if (r < op_weight[k]) {
				op = (enum op)k;
				break;
			}
			r -= op_weight[k];
		}
		struct file *f = &files[rnd_below(cfg.nfiles)];
		switch (op) {
		case OP_WRITE: op_write(f); break;
		case OP_READ: op_read(f); break;
		case OP_TRUNCATE: op_truncate(f); break;
		case OP_PUNCH:
		case OP_KEEPSIZE:
		case OP_ZERO: op_falloc(f, op); break;
		case OP_COPY: op_copy(f, &files[rnd_below(cfg.nfiles)]); break;
		case OP_MAPWRITE: op_mapwrite(f); break;
		case OP_MAPREAD: op_mapread(f); break;
		case OP_FSYNC: op_fsync(f); break;
		case OP_REOPEN: op_reopen(f); break;
		default: break;
		}
		counts[op]++;
		check_size(f, op_names[op]);
		done++;
	}
	logop("final verification of every file");
	for (int i = 0; i < cfg.nfiles; i++)
		verify_file(&files[i], "final verification");
	double secs = now() - start;
	char summary[512];
	size_t len = 0;
	for (int k = 0; k < OP_COUNT; k++)
		len += (size_t)snprintf(summary + len, sizeof(summary) - len, " %s=%ld", op_names[k], counts[k]);
	char skipped[128] = "";
	for (int k = OP_PUNCH; k <= OP_ZERO; k++)
		if (unsupported[k] && !cfg.nofalloc) {
			strcat(skipped, skipped[0] ? "," : " unsupported=");
			strcat(skipped, op_names[k]);
		}
	cleanup_files();
	printf("ok dfsx seed=%llu ops=%ld remounts=%ld seconds=%.1f%s;%s\n", cfg.seed, done, remounts, secs, skipped, summary);
	return 0;
}
