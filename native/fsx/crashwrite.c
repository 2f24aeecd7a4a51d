/* crashwrite: a random write workload whose sync points are journaled outside
 * the filesystem under test, and a verifier that checks, after a crash, that
 * everything journaled is there and nothing is torn.
 *
 *   crashwrite write DIR --seed N --journal FILE [--files N] [--ops N] [--seconds S]
 *                        [--max-size BYTES] [--max-len BYTES]
 *   crashwrite verify DIR --journal FILE
 *
 * The operation stream is a pure function of the seed (and the options, which
 * the journal's first line records): the verifier regenerates it in memory
 * instead of trusting anything read back, so it knows the exact bytes of every
 * state a file went through. Two families of files:
 *
 *   bI  rewritten in place: pwrite (page-aligned, at page edges, arbitrary,
 *       past EOF), ftruncate, copy_file_range from other files; fsync or
 *       fdatasync, after which "B I op N size crc" is journaled. The verifier
 *       replays the stream to op N (the crc must agree: the replay is the
 *       writer's model) and then to the next sync of bI, which never returned
 *       or the journal would say so. The file's size must lie within the sizes
 *       of those states and every byte must equal that byte in one of them
 *       (zero past a state's EOF): unsynced writes may land partly, but
 *       nothing synced may be lost and nothing may appear from nowhere.
 *   aI  replaced whole, by rename: epoch E is built in aI.tmpE (writes incl.
 *       past EOF, truncates, copies from bJ and from the aI it replaces),
 *       fsynced, "P I epoch E" (size, crc) journaled, renamed over aI, aI and
 *       DIR fsynced, "C I epoch E" journaled. So aI must be exactly the last
 *       committed epoch, or the prepared one after it (rename is atomic):
 *       an exact check that a torn or stale file cannot pass.
 *
 * Journal lines are written with one write(2) each to a file opened O_APPEND
 * and fsynced before the workload goes on; a line without its newline is
 * ignored (it was not acknowledged). The writer exits 1 on the first failed
 * system call (after a server crash: ENOTCONN), 0 when its bound is reached.
 * verify exits 0 if every check passes, 1 with the file, the states allowed
 * and the first offending offset otherwise, 2 on bad usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define PAGE 4096L
#define MAX_FILES 16
/* A bI is synced at the latest after this many changes: it bounds the states
 * the verifier must allow for one file (and the memory they take). */
#define MAX_DIRTY 8

enum { OP_BWRITE, OP_BTRUNC, OP_BCOPY, OP_BSYNC, OP_AEPOCH, OP_COUNT };
static const int op_weight[OP_COUNT] = {30, 6, 12, 10, 6};

struct bfile {
	uint8_t *m;
	long size;
	int dirty; /* changes since its last sync */
	int fd;
};
struct afile {
	uint8_t *m; /* the committed epoch */
	long size;
	long epoch;
};

static struct {
	const char *dir, *journal;
	unsigned long long seed;
	int nfiles;
	long ops;
	double seconds;
	long maxsize, maxlen;
} cfg = {.nfiles = 3, .maxsize = 1 << 20, .maxlen = 128 << 10};

static struct bfile bf[MAX_FILES];
static struct afile af[MAX_FILES];
static uint8_t *tmpm; /* the epoch being built */
static long tmpsize;
static long opno;
static int live; /* 1: write, performing the system calls; 0: verify's replay */
static int jfd = -1, dirfd_ = -1;
static uint32_t crctab[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crctab[i] = c;
	}
}
static uint32_t crc32(const uint8_t *p, long n)
{
	uint32_t c = 0xffffffffu;
	for (long i = 0; i < n; i++)
		c = crctab[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* Never zero, and different per seed, op and sub-step, so that a stale or
 * misplaced block cannot look right by accident. */
static inline uint8_t pat(long o, long off)
{
	uint64_t x = (cfg.seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)o << 20) ^ (uint64_t)(off / 251);
	x ^= x >> 29;
	return (uint8_t)(1 + ((x + (uint64_t)(off % 251)) % 255));
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "crashwrite: %s seed=%llu op=%ld: ", live ? "write" : "verify", cfg.seed, opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void jrec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void jrec(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per record: a crash of the writer itself leaves at worst a
	 * line without its newline, which the verifier skips. */
	if (write(jfd, line, (size_t)n) != n || fsync(jfd) != 0)
		fail("journal %s: %s", cfg.journal, strerror(errno));
}

static void path_of(char *buf, size_t n, char fam, int i, long tmp_epoch)
{
	if (tmp_epoch > 0)
		snprintf(buf, n, "%s/%c%d.tmp%ld", cfg.dir, fam, i, tmp_epoch);
	else
		snprintf(buf, n, "%s/%c%d", cfg.dir, fam, i);
}

/* ---- model + (when live) the system calls ---------------------------------- */

static void do_pwrite(int fd, const uint8_t *p, long off, long len, const char *what)
{
	while (len > 0) {
		ssize_t r = pwrite(fd, p, (size_t)len, off);
		if (r <= 0)
			fail("pwrite %s [%ld,+%ld): %s", what, off, len, r < 0 ? strerror(errno) : "wrote 0");
		p += r, off += r, len -= r;
	}
}

static void do_copy(int sfd, long so, int dfd, long doff, long len, const char *what)
{
	loff_t a = so, b = doff;
	while (len > 0) {
		ssize_t r = copy_file_range(sfd, &a, dfd, &b, (size_t)len, 0);
		if (r <= 0)
			fail("copy_file_range %s: %s", what, r < 0 ? strerror(errno) : "returned 0 before the end");
		len -= r;
	}
}

static void do_sync(int fd, int data_only, const char *what)
{
	if ((data_only ? fdatasync(fd) : fsync(fd)) != 0)
		fail("%s %s: %s", data_only ? "fdatasync" : "fsync", what, strerror(errno));
}

/* An offset and length for an I/O into a file of size `size`. */
static void pick_range(long size, long maxlen, long *off, long *len)
{
	long l = 1 + rnd_below(maxlen), o;
	switch (rnd_below(4)) {
	case 0: /* page-aligned */
		l = (l + PAGE - 1) / PAGE * PAGE;
		o = rnd_below(size + 1) / PAGE * PAGE;
		break;
	case 1: /* within 3 bytes of a page edge */
		o = rnd_below(size + 1) / PAGE * PAGE + rnd_below(7) - 3;
		break;
	case 2:
		o = rnd_below(size + 1);
		break;
	default: /* past EOF: a gap that must read as zeros */
		o = size + rnd_below(maxlen);
		break;
	}
	if (o < 0)
		o = 0;
	if (l > cfg.maxsize)
		l = cfg.maxsize;
	if (o + l > cfg.maxsize)
		o = cfg.maxsize - l;
	*off = o, *len = l;
}

static void model_write(uint8_t *m, long *size, long off, const uint8_t *src, long len)
{
	if (off > *size)
		memset(m + *size, 0, (size_t)(off - *size));
	memmove(m + off, src, (size_t)len);
	if (off + len > *size)
		*size = off + len;
}

static void model_trunc(uint8_t *m, long *size, long ns)
{
	if (ns > *size)
		memset(m + *size, 0, (size_t)(ns - *size));
	*size = ns;
}

static uint8_t *scratch;

static void fill(long o, long off, long len)
{
	for (long j = 0; j < len; j++)
		scratch[j] = pat(o, off + j);
}

/* One op of the stream; returns the op kind and sets *file to the bI it
 * changed or synced (-1 for an epoch). */
static int step(int *file)
{
	int op = -1, i = -1;
	*file = -1;
	for (int k = 0; k < cfg.nfiles; k++)
		if (bf[k].dirty >= MAX_DIRTY)
			op = OP_BSYNC, i = k;
	if (op < 0) {
		long total = 0, r;
		for (int k = 0; k < OP_COUNT; k++)
			total += op_weight[k];
		r = rnd_below(total);
		for (op = 0; r >= op_weight[op]; op++)
			r -= op_weight[op];
		i = (int)rnd_below(cfg.nfiles);
	}
	char what[64];
	snprintf(what, sizeof(what), "b%d", i);
	struct bfile *b = &bf[i];
	long off, len;
	switch (op) {
	case OP_BWRITE:
		pick_range(b->size, cfg.maxlen, &off, &len);
		fill(opno, off, len);
		if (live)
			do_pwrite(b->fd, scratch, off, len, what);
		model_write(b->m, &b->size, off, scratch, len);
		b->dirty++;
		*file = i;
		break;
	case OP_BTRUNC: {
		long ns = rnd_below(2) ? rnd_below(b->size + 1) : b->size + rnd_below(cfg.maxsize - b->size + 1);
		if (live && ftruncate(b->fd, ns) != 0)
			fail("ftruncate %s to %ld: %s", what, ns, strerror(errno));
		model_trunc(b->m, &b->size, ns);
		b->dirty++;
		*file = i;
		break;
	}
	case OP_BCOPY: {
		/* From another bJ, or from a committed aJ (a renamed-over file). */
		int fromA = (int)rnd_below(2), j = (int)rnd_below(cfg.nfiles);
		if (!fromA && j == i)
			j = (j + 1) % cfg.nfiles;
		const uint8_t *sm = fromA ? af[j].m : bf[j].m;
		long ssize = fromA ? af[j].size : bf[j].size;
		if (ssize == 0 || (!fromA && j == i)) {
			rnd(); /* keep the stream's shape independent of this */
			break;
		}
		long so = rnd_below(ssize);
		if (rnd_below(2))
			so = so / PAGE * PAGE; /* the reflink path */
		long l = 1 + rnd_below(ssize - so < cfg.maxlen ? ssize - so : cfg.maxlen);
		long doff = rnd_below(b->size + 1);
		if (so % PAGE == 0)
			doff = doff / PAGE * PAGE;
		if (doff + l > cfg.maxsize)
			doff = cfg.maxsize - l;
		if (live) {
			char sp[4200];
			path_of(sp, sizeof(sp), fromA ? 'a' : 'b', j, 0);
			int sfd = fromA ? open(sp, O_RDONLY) : bf[j].fd;
			if (sfd < 0)
				fail("open %s: %s", sp, strerror(errno));
			do_copy(sfd, so, b->fd, doff, l, what);
			if (fromA)
				close(sfd);
		}
		memcpy(scratch, sm + so, (size_t)l);
		model_write(b->m, &b->size, doff, scratch, l);
		b->dirty++;
		*file = i;
		break;
	}
	case OP_BSYNC: {
		int data_only = (int)rnd_below(2);
		if (live) {
			do_sync(b->fd, data_only, what);
			jrec("B %d op %ld size %ld crc %08x\n", i, opno, b->size, crc32(b->m, b->size));
		}
		b->dirty = 0;
		*file = i;
		break;
	}
	case OP_AEPOCH: {
		struct afile *a = &af[i];
		long e = a->epoch + 1, nsub = 1 + rnd_below(6);
		char tp[4200], fp[4200];
		int tfd = -1;
		path_of(tp, sizeof(tp), 'a', i, e);
		path_of(fp, sizeof(fp), 'a', i, 0);
		if (live && (tfd = open(tp, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
			fail("create %s: %s", tp, strerror(errno));
		tmpsize = 0;
		for (long s = 0; s < nsub; s++) {
			long kind = rnd_below(4);
			if (kind <= 1) {
				pick_range(tmpsize, cfg.maxlen, &off, &len);
				fill(opno * 8 + s + (1L << 40), off, len);
				if (live)
					do_pwrite(tfd, scratch, off, len, tp);
				model_write(tmpm, &tmpsize, off, scratch, len);
			} else if (kind == 2) {
				long ns = rnd_below(tmpsize + cfg.maxlen);
				if (ns > cfg.maxsize)
					ns = cfg.maxsize;
				if (live && ftruncate(tfd, ns) != 0)
					fail("ftruncate %s to %ld: %s", tp, ns, strerror(errno));
				model_trunc(tmpm, &tmpsize, ns);
			} else {
				/* From the aI this epoch replaces (still under its old name) or a bJ. */
				int fromOld = (int)rnd_below(2), j = (int)rnd_below(cfg.nfiles);
				const uint8_t *sm = fromOld ? a->m : bf[j].m;
				long ssize = fromOld ? a->size : bf[j].size;
				if (ssize == 0) {
					rnd();
					continue;
				}
				long so = rnd_below(ssize);
				long l = 1 + rnd_below(ssize - so < cfg.maxlen ? ssize - so : cfg.maxlen);
				long doff = rnd_below(tmpsize + 1);
				if (doff + l > cfg.maxsize)
					doff = cfg.maxsize - l;
				if (live) {
					int sfd = fromOld ? open(fp, O_RDONLY) : bf[j].fd;
					if (sfd < 0)
						fail("open %s: %s", fp, strerror(errno));
					do_copy(sfd, so, tfd, doff, l, tp);
					if (fromOld)
						close(sfd);
				}
				memcpy(scratch, sm + so, (size_t)l);
				model_write(tmpm, &tmpsize, doff, scratch, l);
			}
		}
		int data_only = (int)rnd_below(2);
		if (live) {
			do_sync(tfd, data_only, tp);
			jrec("P %d epoch %ld op %ld size %ld crc %08x\n", i, e, opno, tmpsize, crc32(tmpm, tmpsize));
			if (rename(tp, fp) != 0)
				fail("rename %s -> %s: %s", tp, fp, strerror(errno));
			do_sync(tfd, 0, fp);
			do_sync(dirfd_, 0, cfg.dir);
			jrec("C %d epoch %ld op %ld\n", i, e, opno);
			close(tfd);
		}
		memcpy(a->m, tmpm, (size_t)tmpsize);
		a->size = tmpsize;
		a->epoch = e;
		break;
	}
	}
	return op;
}

static void alloc_models(void)
{
	crc_init();
	rng_state = cfg.seed;
	scratch = malloc((size_t)cfg.maxsize);
	tmpm = malloc((size_t)cfg.maxsize);
	if (!scratch || !tmpm)
		fail("out of memory");
	for (int i = 0; i < cfg.nfiles; i++) {
		bf[i].m = calloc((size_t)cfg.maxsize, 1);
		af[i].m = calloc((size_t)cfg.maxsize, 1);
		bf[i].fd = -1;
		if (!bf[i].m || !af[i].m)
			fail("out of memory");
	}
}

static int cmd_write(void)
{
	live = 1;
	alloc_models();
	jfd = open(cfg.journal, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (jfd < 0)
		fail("journal %s: %s", cfg.journal, strerror(errno));
	dirfd_ = open(cfg.dir, O_RDONLY | O_DIRECTORY);
	if (dirfd_ < 0)
		fail("open %s: %s", cfg.dir, strerror(errno));
	jrec("crashwrite 1 seed %llu files %d max-size %ld max-len %ld\n", cfg.seed, cfg.nfiles, cfg.maxsize, cfg.maxlen);
	for (int i = 0; i < cfg.nfiles; i++) {
		char p[4200];
		path_of(p, sizeof(p), 'b', i, 0);
		bf[i].fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (bf[i].fd < 0)
			fail("create %s: %s", p, strerror(errno));
		do_sync(bf[i].fd, 0, p);
	}
	do_sync(dirfd_, 0, cfg.dir);
	for (int i = 0; i < cfg.nfiles; i++)
		jrec("B %d op 0 size 0 crc %08x\n", i, crc32(NULL, 0));
	double t0 = now();
	int f;
	for (opno = 1; (cfg.ops == 0 || opno <= cfg.ops) && (cfg.seconds <= 0 || now() - t0 < cfg.seconds); opno++)
		step(&f);
	jrec("E op %ld\n", opno - 1);
	printf("ok crashwrite write seed=%llu ops=%ld seconds=%.1f\n", cfg.seed, opno - 1, now() - t0);
	return 0;
}

/* ---- verify ------------------------------------------------------------- */

struct bstate { /* one state a bI went through since its last journaled sync */
	uint8_t *m;
	long size;
};
static struct {
	long sync_op; /* -1: never journaled */
	uint32_t crc;
	long jsize;
	int open, nst; /* window of allowed states still growing */
	struct bstate st[MAX_DIRTY + 2];
} bv[MAX_FILES];
static struct {
	long committed, prepared; /* epochs; 0 = none */
	long p_op, p_size;
	uint32_t p_crc, c_crc;
	long c_size;
	uint8_t *cm, *pm; /* replayed content of those epochs */
	long cms, pms;
	int have_c, have_p;
} av[MAX_FILES];

static int errors;
__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
	va_list ap;
	printf("FAIL crashwrite verify seed=%llu: ", cfg.seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	errors++;
}

static void snap(int i)
{
	struct bstate *s = &bv[i].st[bv[i].nst++];
	s->m = malloc((size_t)cfg.maxsize);
	if (!s->m)
		fail("out of memory");
	memcpy(s->m, bf[i].m, (size_t)bf[i].size);
	s->size = bf[i].size;
}

/* Reads PATH whole; returns its size, -1 if it does not exist. */
static long read_all(const char *path, uint8_t *buf, long cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		fail("open %s: %s", path, strerror(errno));
	}
	long n = 0;
	for (;;) {
		ssize_t r = pread(fd, buf + n, (size_t)(cap - n), n);
		if (r < 0)
			fail("read %s at %ld: %s", path, n, strerror(errno));
		if (r == 0)
			break;
		n += r;
		if (n == cap)
			break;
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		fail("fstat %s: %s", path, strerror(errno));
	close(fd);
	if (st.st_size != n)
		bad("%s: fstat says %lld bytes, read returned %ld", path, (long long)st.st_size, n);
	return n;
}

static void first_diff(const char *path, const uint8_t *got, long gs, const uint8_t *want, long ws, const char *label)
{
	long n = gs < ws ? gs : ws, k;
	for (k = 0; k < n && got[k] == want[k]; k++)
		;
	if (k < n)
		printf("  %s: %s: size %ld vs %ld; first difference at offset %ld: got 0x%02x, expected 0x%02x\n",
		       path, label, gs, ws, k, got[k], want[k]);
	else
		printf("  %s: %s: size %ld vs %ld; equal over the common %ld bytes\n", path, label, gs, ws, n);
}

static int cmd_verify(void)
{
	FILE *j = fopen(cfg.journal, "r");
	if (!j)
		fail("journal %s: %s", cfg.journal, strerror(errno));
	char line[512];
	long end_op = -1;
	int header = 0;
	for (int i = 0; i < MAX_FILES; i++)
		bv[i].sync_op = -1;
	while (fgets(line, sizeof(line), j)) {
		size_t L = strlen(line);
		if (L == 0 || line[L - 1] != '\n')
			break; /* unacknowledged tail */
		int i;
		long a, b, c;
		unsigned crc;
		if (!header) {
			if (sscanf(line, "crashwrite 1 seed %llu files %d max-size %ld max-len %ld", &cfg.seed, &cfg.nfiles,
				   &cfg.maxsize, &cfg.maxlen) != 4 || cfg.nfiles < 1 || cfg.nfiles > MAX_FILES)
				fail("journal %s: bad header: %s", cfg.journal, line);
			header = 1;
		} else if (sscanf(line, "B %d op %ld size %ld crc %x", &i, &a, &b, &crc) == 4 && i >= 0 && i < cfg.nfiles) {
			bv[i].sync_op = a, bv[i].jsize = b, bv[i].crc = crc;
		} else if (sscanf(line, "P %d epoch %ld op %ld size %ld crc %x", &i, &a, &b, &c, &crc) == 5 && i >= 0 &&
			   i < cfg.nfiles) {
			av[i].prepared = a, av[i].p_op = b, av[i].p_size = c, av[i].p_crc = crc;
		} else if (sscanf(line, "C %d epoch %ld op %ld", &i, &a, &b) == 3 && i >= 0 && i < cfg.nfiles) {
			if (a != av[i].prepared)
				fail("journal: commit of a%d epoch %ld without its prepare", i, a);
			av[i].committed = a, av[i].c_size = av[i].p_size, av[i].c_crc = av[i].p_crc;
		} else if (sscanf(line, "E op %ld", &a) == 1) {
			end_op = a;
		} else {
			fail("journal %s: unknown record: %s", cfg.journal, line);
		}
	}
	fclose(j);
	if (!header)
		fail("journal %s has no header", cfg.journal);
	alloc_models();
	for (int i = 0; i < cfg.nfiles; i++) {
		av[i].cm = malloc((size_t)cfg.maxsize);
		av[i].pm = malloc((size_t)cfg.maxsize);
		if (!av[i].cm || !av[i].pm)
			fail("out of memory");
	}

	/* Replay until every bI's window has closed (its next sync) and every
	 * prepared epoch has been built. */
	long limit = end_op >= 0 ? end_op : -1;
	for (int i = 0; i < cfg.nfiles; i++)
		if (bv[i].sync_op == 0)
			bv[i].open = 1, snap(i);
	for (opno = 1;; opno++) {
		int pending = 0;
		for (int i = 0; i < cfg.nfiles; i++)
			pending |= bv[i].open || bv[i].sync_op >= opno || av[i].p_op >= opno;
		if (!pending || (limit >= 0 && opno > limit))
			break;
		if (limit < 0 && opno > 100000000)
			fail("replay did not reach the journal's last records after 1e8 ops");
		int f, op = step(&f);
		/* Epochs only grow: each wanted one is built exactly once. */
		for (int i = 0; op == OP_AEPOCH && i < cfg.nfiles; i++) {
			if (av[i].committed && af[i].epoch == av[i].committed && !av[i].have_c) {
				memcpy(av[i].cm, af[i].m, (size_t)af[i].size);
				av[i].cms = af[i].size, av[i].have_c = 1;
			}
			if (av[i].prepared && af[i].epoch == av[i].prepared && !av[i].have_p) {
				memcpy(av[i].pm, af[i].m, (size_t)af[i].size);
				av[i].pms = af[i].size, av[i].have_p = 1;
			}
		}
		if (f < 0)
			continue;
		if (bv[f].open) {
			if (op == OP_BSYNC)
				bv[f].open = 0; /* that sync never completed, or it would be journaled */
			else
				snap(f);
		} else if (op == OP_BSYNC && opno == bv[f].sync_op) {
			if (bf[f].size != bv[f].jsize || crc32(bf[f].m, bf[f].size) != bv[f].crc)
				fail("replay of b%d at op %ld gives size %ld crc %08x, the journal says size %ld crc %08x "
				     "(the replay is not the writer's stream)", f, opno, bf[f].size, crc32(bf[f].m, bf[f].size),
				     bv[f].jsize, bv[f].crc);
			bv[f].open = 1;
			snap(f);
		}
	}
	uint8_t *got = malloc((size_t)cfg.maxsize + 1);
	if (!got)
		fail("out of memory");
	long checked_b = 0, checked_a = 0;
	for (int i = 0; i < cfg.nfiles; i++) {
		char p[4200];
		path_of(p, sizeof(p), 'b', i, 0);
		long n = read_all(p, got, cfg.maxsize + 1);
		if (bv[i].sync_op < 0) {
			if (n >= 0 && n != 0)
				bad("%s: never synced, yet it holds %ld bytes", p, n);
			continue;
		}
		if (n < 0) {
			bad("%s: missing, but its creation was synced (journaled at op %ld)", p, bv[i].sync_op);
			continue;
		}
		long lo = bv[i].st[0].size, hi = lo;
		for (int k = 1; k < bv[i].nst; k++) {
			if (bv[i].st[k].size < lo)
				lo = bv[i].st[k].size;
			if (bv[i].st[k].size > hi)
				hi = bv[i].st[k].size;
		}
		if (n < lo || n > hi) {
			bad("%s: size %ld, but synced at op %ld with size %ld and the later unsynced states lie in [%ld,%ld]",
			    p, n, bv[i].sync_op, bv[i].jsize, lo, hi);
			continue;
		}
		for (long x = 0; x < n; x++) {
			int ok = 0;
			for (int k = 0; k < bv[i].nst && !ok; k++)
				ok = got[x] == (x < bv[i].st[k].size ? bv[i].st[k].m[x] : 0);
			if (!ok) {
				bad("%s: byte at offset %ld is 0x%02x; synced at op %ld it was 0x%02x (size %ld), and none of the "
				    "%d unsynced states after it has that value there",
				    p, x, got[x], bv[i].sync_op, x < bv[i].st[0].size ? bv[i].st[0].m[x] : 0, bv[i].st[0].size,
				    bv[i].nst - 1);
				break;
			}
		}
		checked_b++;
	}
	for (int i = 0; i < cfg.nfiles; i++) {
		char p[4200];
		path_of(p, sizeof(p), 'a', i, 0);
		long n = read_all(p, got, cfg.maxsize + 1);
		uint32_t c = n >= 0 ? crc32(got, n) : 0;
		int is_c = av[i].committed && n == av[i].c_size && c == av[i].c_crc && n == av[i].cms &&
			   memcmp(got, av[i].cm, (size_t)n) == 0;
		int is_p = av[i].prepared > av[i].committed && n == av[i].p_size && c == av[i].p_crc && n == av[i].pms &&
			   memcmp(got, av[i].pm, (size_t)n) == 0;
		int absent_ok = n < 0 && av[i].committed == 0;
		if (is_c || is_p || absent_ok) {
			checked_a += n >= 0;
			continue;
		}
		if (n < 0) {
			bad("%s: missing, but epoch %ld was committed (renamed into place and synced)", p, av[i].committed);
			continue;
		}
		if (av[i].committed == 0 && av[i].prepared == 0) {
			bad("%s: exists (%ld bytes) though no epoch of it was ever prepared", p, n);
			continue;
		}
		bad("%s: %ld bytes, crc %08x: neither committed epoch %ld (size %ld crc %08x) nor prepared epoch %ld "
		    "(size %ld crc %08x)",
		    p, n, c, av[i].committed, av[i].c_size, av[i].c_crc,
		    av[i].prepared > av[i].committed ? av[i].prepared : 0, av[i].p_size, av[i].p_crc);
		if (av[i].committed)
			first_diff(p, got, n, av[i].cm, av[i].cms, "vs committed");
		if (av[i].prepared > av[i].committed)
			first_diff(p, got, n, av[i].pm, av[i].pms, "vs prepared");
	}
	if (errors)
		return 1;
	printf("ok crashwrite verify seed=%llu: %ld in-place files, %ld renamed files checked (journal up to op %ld%s)\n",
	       cfg.seed, checked_b, checked_a, opno - 1, end_op >= 0 ? ", writer finished" : "");
	return 0;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: crashwrite write DIR --seed N --journal FILE [--files N] [--ops N] [--seconds S]\n"
		    "                        [--max-size BYTES] [--max-len BYTES]\n"
		    "       crashwrite verify DIR --journal FILE\n"
		    "  --files N        files per family (aI renamed, bI in place; default 3, at most %d)\n"
		    "  --ops N          stop after N ops (default 0: no limit)\n"
		    "  --seconds S      stop after S seconds (default 0: no limit)\n"
		    "  --max-size B     largest file (default 1M)   --max-len B  largest I/O (default 128k)\n"
		    "The journal must live outside DIR's filesystem.\n",
		MAX_FILES);
}

int main(int argc, char **argv)
{
	fsx_prog = "crashwrite";
	static const struct option longopts[] = {
		{"seed", 1, 0, 'S'},     {"journal", 1, 0, 'j'},  {"files", 1, 0, 'n'}, {"ops", 1, 0, 'N'},
		{"seconds", 1, 0, 't'},  {"max-size", 1, 0, 's'}, {"max-len", 1, 0, 'l'}, {"help", 0, 0, 'h'},
		{0, 0, 0, 0}};
	int have_seed = 0, c;
	if (argc < 2 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "verify") != 0)) {
		usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	int writing = !strcmp(argv[1], "write");
	optind = 2;
	while ((c = getopt_long(argc, argv, "S:j:n:N:t:s:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': cfg.seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 'j': cfg.journal = optarg; break;
		case 'n': cfg.nfiles = (int)parse_num(optarg, "--files"); break;
		case 'N': cfg.ops = parse_num(optarg, "--ops"); break;
		case 't': cfg.seconds = strtod(optarg, NULL); break;
		case 's': cfg.maxsize = parse_num(optarg, "--max-size"); break;
		case 'l': cfg.maxlen = parse_num(optarg, "--max-len"); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !cfg.journal || (writing && !have_seed)) {
		usage(stderr);
		return 2;
	}
	cfg.dir = argv[optind];
	if (cfg.nfiles < 1 || cfg.nfiles > MAX_FILES || cfg.maxsize < 2 * PAGE || cfg.maxlen < 1 ||
	    cfg.maxlen > cfg.maxsize / 2) {
		fprintf(stderr, "crashwrite: bad options (files 1..%d, max-size >= 8192, 1 <= max-len <= max-size/2)\n",
			MAX_FILES);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return writing ? cmd_write() : cmd_verify();
}
