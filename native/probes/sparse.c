/* sparse DIR: holes and fallocate(2).
 *  - SEEK_DATA/SEEK_HOLE walk of a file with data at 0, 1 MiB and 3 MiB+100
 *    in a 4 MiB file: every written byte must lie in a reported data
 *    segment, every reported hole must read as zeros, SEEK_HOLE never passes
 *    EOF, SEEK_DATA at/after EOF is ENXIO. A filesystem without hole support
 *    reports the whole file as data, which is legal; the walk is printed.
 *  - fallocate modes, each on its own file with content checks: default
 *    (allocates, extends the size, keeps data), KEEP_SIZE (size unchanged),
 *    PUNCH_HOLE|KEEP_SIZE (unaligned range reads as zeros, size unchanged),
 *    ZERO_RANGE (inside the file and extending it). EOPNOTSUPP for a mode is
 *    reported as `unsupported`, not a failure. */
#include "probe.h"

#include <linux/falloc.h>

#define MIB (1 << 20)

struct seg {
	off_t start, end;
	int data;
};

static void walk(int fd, off_t size, const uint8_t *model, const char *label)
{
	struct seg segs[64];
	int nseg = 0;
	off_t pos = 0;
	while (pos < size) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			d = size; /* only a hole remains */
		else if (d < 0)
			fail("lseek(%lld, SEEK_DATA): %s", (long long)pos, strerror(errno));
		if (d < pos || d > size)
			fail("SEEK_DATA from %lld returned %lld (size %lld)", (long long)pos, (long long)d, (long long)size);
		if (d > pos && nseg < 64)
			segs[nseg++] = (struct seg){pos, d, 0};
		if (d >= size)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			fail("lseek(%lld, SEEK_HOLE): %s", (long long)d, strerror(errno));
		if (h <= d || h > size)
			fail("SEEK_HOLE from %lld returned %lld (size %lld)", (long long)d, (long long)h, (long long)size);
		if (nseg < 64)
			segs[nseg++] = (struct seg){d, h, 1};
		pos = h;
	}
	if (nseg >= 64)
		fail("more than 64 data/hole segments");
	errno = 0;
	off_t e = lseek(fd, size, SEEK_DATA);
	if (e != -1 || errno != ENXIO)
		fail("SEEK_DATA at EOF returned %lld (%s), expected ENXIO", (long long)e, strerror(errno));
	e = lseek(fd, size, SEEK_HOLE);
	if (e != -1 || errno != ENXIO)
		fail("SEEK_HOLE at EOF returned %lld (%s), expected ENXIO", (long long)e, strerror(errno));
	e = lseek(fd, 0, SEEK_HOLE);
	if (e < 0 || e > size)
		fail("SEEK_HOLE from 0 returned %lld", (long long)e);

	/* holes read as zeros; written (non-zero) bytes are all inside data */
	char desc[1024] = "";
	size_t len = 0;
	int holes = 0;
	uint8_t *buf = xmalloc(MIB);
	for (int i = 0; i < nseg; i++) {
		len += (size_t)snprintf(desc + len, sizeof(desc) - len, "%s%s[%lld,%lld)", i ? " " : "",
					segs[i].data ? "data" : "hole", (long long)segs[i].start, (long long)segs[i].end);
		if (len >= sizeof(desc))
			len = sizeof(desc) - 1;
		if (segs[i].data)
			continue;
		holes++;
		for (off_t p = segs[i].start; p < segs[i].end; p += MIB) {
			size_t l = (size_t)(segs[i].end - p < MIB ? segs[i].end - p : MIB);
			size_t n = must_pread(fd, buf, l, p, "hole read");
			if (n != l)
				fail("short read in hole at %lld", (long long)p);
			for (size_t k = 0; k < l; k++) {
				if (buf[k] != 0)
					fail("reported hole [%lld,%lld) has byte 0x%02x at %lld", (long long)segs[i].start,
					     (long long)segs[i].end, buf[k], (long long)p + (long long)k);
				if (model[p + (off_t)k] != 0)
					fail("written byte at %lld reported inside hole [%lld,%lld)", (long long)p + (long long)k,
					     (long long)segs[i].start, (long long)segs[i].end);
			}
		}
	}
	free(buf);
	note("%s: %s%s", label, desc, holes ? "" : " (no holes reported: legal)");
}

static int try_fallocate(int fd, int mode, off_t off, off_t len, const char *name)
{
	if (fallocate(fd, mode, off, len) == 0)
		return 1;
	if (errno == EOPNOTSUPP) {
		note("%s: unsupported", name);
		return 0;
	}
	fail("fallocate(%s, %lld, %lld): %s", name, (long long)off, (long long)len, strerror(errno));
}

static void expect_file(int fd, const uint8_t *model, off_t size, const char *what)
{
	if (file_size(fd) != size)
		fail("%s: size is %lld, expected %lld", what, (long long)file_size(fd), (long long)size);
	expect_bytes(fd, 0, model, (size_t)size, what);
}

int main(int argc, char **argv)
{
	probe_init("sparse", argc, argv);
	const off_t size = 4 * MIB;
	uint8_t *model = calloc((size_t)size + MIB, 1);
	if (!model)
		fail("out of memory");

	/* the walk */
	int fd = open_new(probe_path("holes"), 0);
	fill(model, 4096, 1, 0);
	fill(model + MIB, 8192, 2, MIB);
	fill(model + 3 * MIB + 100, 5000, 3, 3 * MIB + 100);
	must_pwrite(fd, model, 4096, 0, "data at 0");
	must_pwrite(fd, model + MIB, 8192, MIB, "data at 1 MiB");
	must_pwrite(fd, model + 3 * MIB + 100, 5000, 3 * MIB + 100, "data at 3 MiB+100");
	if (ftruncate(fd, size) != 0)
		fail("ftruncate: %s", strerror(errno));
	expect_file(fd, model, size, "sparse file");
	walk(fd, size, model, "seek walk");
	if (fsync(fd) != 0)
		fail("fsync: %s", strerror(errno));
	walk(fd, size, model, "after fsync"); /* again after fsync: the walk must stay consistent with the data */
	close(fd);

	/* default mode: allocate inside and beyond EOF, data kept, size grows */
	fd = open_new(probe_path("falloc-default"), 0);
	memset(model, 0, (size_t)size);
	fill(model, 10000, 4, 0);
	must_pwrite(fd, model, 10000, 0, "default: data");
	if (try_fallocate(fd, 0, 4096, 60000, "default")) {
		expect_file(fd, model, 64096, "fallocate default");
		if (try_fallocate(fd, 0, 0, 4096, "default"))
			expect_file(fd, model, 64096, "fallocate default inside the file");
		note("default: ok");
	}
	close(fd);

	/* KEEP_SIZE: beyond EOF, size unchanged, later extension reads zeros */
	fd = open_new(probe_path("falloc-keep"), 0);
	memset(model, 0, (size_t)size);
	fill(model, 10000, 5, 0);
	must_pwrite(fd, model, 10000, 0, "keep_size: data");
	if (try_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 200000, "keep_size")) {
		expect_file(fd, model, 10000, "fallocate KEEP_SIZE");
		if (ftruncate(fd, 150000) != 0)
			fail("ftruncate: %s", strerror(errno));
		expect_file(fd, model, 150000, "KEEP_SIZE then grow: the preallocated tail reads as zeros");
		note("keep_size: ok");
	}
	close(fd);

	/* PUNCH_HOLE|KEEP_SIZE: unaligned start and end, plus a whole-page punch */
	fd = open_new(probe_path("falloc-punch"), 0);
	fill(model, 65536, 6, 0);
	must_pwrite(fd, model, 65536, 0, "punch: data");
	if (try_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3000, 12000, "punch_hole")) {
		memset(model + 3000, 0, 12000);
		expect_file(fd, model, 65536, "PUNCH_HOLE unaligned");
		if (try_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 32768, 8192, "punch_hole")) {
			memset(model + 32768, 0, 8192);
			expect_file(fd, model, 65536, "PUNCH_HOLE aligned");
		}
		/* punching past EOF keeps the size */
		if (try_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 60000, 100000, "punch_hole")) {
			memset(model + 60000, 0, 65536 - 60000);
			expect_file(fd, model, 65536, "PUNCH_HOLE across EOF");
		}
		/* the punched range can be written again */
		fill(model + 4000, 100, 7, 4000);
		must_pwrite(fd, model + 4000, 100, 4000, "write into a punched hole");
		expect_file(fd, model, 65536, "write into a punched hole");
		note("punch_hole: ok");
	}
	close(fd);

	/* ZERO_RANGE: inside the file, then extending it */
	fd = open_new(probe_path("falloc-zero"), 0);
	fill(model, 65536, 8, 0);
	must_pwrite(fd, model, 65536, 0, "zero_range: data");
	if (try_fallocate(fd, FALLOC_FL_ZERO_RANGE, 1000, 20000, "zero_range")) {
		memset(model + 1000, 0, 20000);
		expect_file(fd, model, 65536, "ZERO_RANGE inside");
		if (try_fallocate(fd, FALLOC_FL_ZERO_RANGE, 60000, 10000, "zero_range")) {
			memset(model + 60000, 0, 10000);
			expect_file(fd, model, 70000, "ZERO_RANGE extending");
			note("zero_range: ok");
		}
	}
	close(fd);
	pass();
}
