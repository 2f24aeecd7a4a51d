/* reflink DIR: copy_file_range(2) and the FICLONE / FICLONERANGE ioctls.
 *  - whole-file copy (explicit offsets, looped over short copies), return
 *    counts and advanced offsets checked, then the same with NULL offsets
 *    (the descriptors' positions must advance);
 *  - an unaligned range into the middle of an existing file, a range that
 *    crosses the source's EOF (short copy), a copy at/after EOF (returns 0),
 *    a copy that extends the destination past its EOF (the gap reads as
 *    zeros), a non-overlapping copy within one file;
 *  - FICLONE and FICLONERANGE: FUSE does not forward them, so EOPNOTSUPP,
 *    ENOTTY, EXDEV, EINVAL or ENOSYS is expected and reported; on success the
 *    clone's bytes are checked; on failure the destination must be unchanged. */
#include "probe.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

#define SRC_SIZE ((1 << 20) + 12345)

static uint8_t *src_model;

/* Copies len bytes (or to the source's EOF) in a loop; returns the total. */
static size_t crf_loop(int in, off_t off_in, int out, off_t off_out, size_t len, const char *what)
{
	size_t total = 0;
	while (total < len) {
		loff_t i = off_in + (off_t)total, o = off_out + (off_t)total;
		ssize_t n = copy_file_range(in, &i, out, &o, len - total, 0);
		if (n < 0)
			fail("%s: copy_file_range(%zu, in@%lld, out@%lld): %s", what, len - total, (long long)(off_in + (off_t)total),
			     (long long)(off_out + (off_t)total), strerror(errno));
		if (n == 0)
			break;
		if ((size_t)n > len - total)
			fail("%s: copy_file_range returned %zd for a request of %zu", what, n, len - total);
		if (i != off_in + (off_t)total + n || o != off_out + (off_t)total + n)
			fail("%s: offsets advanced to in=%lld out=%lld after copying %zd", what, (long long)i, (long long)o, n);
		total += (size_t)n;
	}
	return total;
}

static void expect_model(int fd, const uint8_t *model, size_t size, const char *what)
{
	if ((size_t)file_size(fd) != size)
		fail("%s: size is %lld, expected %zu", what, (long long)file_size(fd), size);
	expect_bytes(fd, 0, model, size, what);
}

static int clone_ok_errno(int e)
{
	return e == EOPNOTSUPP || e == ENOTTY || e == EXDEV || e == EINVAL || e == ENOSYS;
}

int main(int argc, char **argv)
{
	probe_init("reflink", argc, argv);
	int src = open_new(probe_path("src"), 0);
	src_model = xmalloc(SRC_SIZE);
	fill(src_model, SRC_SIZE, 1, 0);
	must_pwrite(src, src_model, SRC_SIZE, 0, "source");

	/* 1. whole file, explicit offsets */
	int dst = open_new(probe_path("dst"), 0);
	size_t n = crf_loop(src, 0, dst, 0, SRC_SIZE + 100000, "whole file");
	if (n != SRC_SIZE)
		fail("whole file: copied %zu bytes, expected %d", n, SRC_SIZE);
	expect_model(dst, src_model, SRC_SIZE, "whole-file copy");
	note("whole file (%d bytes) copied", SRC_SIZE);

	/* 2. whole file with NULL offsets: the descriptors' positions advance */
	int dst2 = open_new(probe_path("dst2"), 0);
	if (lseek(src, 0, SEEK_SET) != 0)
		fail("lseek: %s", strerror(errno));
	size_t total = 0;
	for (;;) {
		ssize_t r = copy_file_range(src, NULL, dst2, NULL, 1 << 30, 0);
		if (r < 0)
			fail("copy_file_range(NULL offsets): %s", strerror(errno));
		if (r == 0)
			break;
		total += (size_t)r;
	}
	if (total != SRC_SIZE)
		fail("NULL-offset copy: %zu bytes, expected %d", total, SRC_SIZE);
	if (lseek(src, 0, SEEK_CUR) != SRC_SIZE || lseek(dst2, 0, SEEK_CUR) != SRC_SIZE)
		fail("NULL-offset copy: positions src=%lld dst=%lld, expected %d", (long long)lseek(src, 0, SEEK_CUR),
		     (long long)lseek(dst2, 0, SEEK_CUR), SRC_SIZE);
	expect_model(dst2, src_model, SRC_SIZE, "NULL-offset copy");

	/* 3. unaligned range into the middle of an existing file */
	const size_t dsize = 65536;
	uint8_t *dmodel = xmalloc(4 << 20);
	int dst3 = open_new(probe_path("dst3"), 0);
	fill(dmodel, dsize, 2, 0);
	must_pwrite(dst3, dmodel, dsize, 0, "dst3");
	n = crf_loop(src, 4096 + 13, dst3, 777, 10000, "unaligned range");
	if (n != 10000)
		fail("unaligned range: copied %zu, expected 10000", n);
	memcpy(dmodel + 777, src_model + 4096 + 13, 10000);
	expect_model(dst3, dmodel, dsize, "unaligned range");
	/* page-aligned range of several pages, to a page-aligned destination */
	n = crf_loop(src, 8192, dst3, 16384, 5 * 4096, "page-aligned range");
	if (n != 5 * 4096)
		fail("page-aligned range: copied %zu", n);
	memcpy(dmodel + 16384, src_model + 8192, 5 * 4096);
	expect_model(dst3, dmodel, dsize, "page-aligned range");
	note("unaligned and page-aligned ranges ok");

	/* 4. crossing the source's EOF: short copy, then 0 at EOF and past it */
	n = crf_loop(src, SRC_SIZE - 3000, dst3, 30000, 8000, "range across source EOF");
	if (n != 3000)
		fail("range across source EOF: copied %zu, expected 3000", n);
	memcpy(dmodel + 30000, src_model + SRC_SIZE - 3000, 3000);
	loff_t i = SRC_SIZE, o = 0;
	ssize_t r = copy_file_range(src, &i, dst3, &o, 4096, 0);
	if (r != 0)
		fail("copy_file_range at source EOF returned %zd (%s), expected 0", r, r < 0 ? strerror(errno) : "");
	i = SRC_SIZE + 5000;
	r = copy_file_range(src, &i, dst3, &o, 4096, 0);
	if (r != 0)
		fail("copy_file_range past source EOF returned %zd (%s), expected 0", r, r < 0 ? strerror(errno) : "");
	expect_model(dst3, dmodel, dsize, "after EOF copies");
	note("short copy across EOF and 0 at/after EOF ok");

	/* 5. extending the destination: the gap before the copy reads as zeros */
	n = crf_loop(src, 100, dst3, (off_t)dsize + 5000, 20000, "extending copy");
	if (n != 20000)
		fail("extending copy: copied %zu", n);
	memset(dmodel + dsize, 0, 5000);
	memcpy(dmodel + dsize + 5000, src_model + 100, 20000);
	size_t dsize2 = dsize + 25000;
	expect_model(dst3, dmodel, dsize2, "extending copy");

	/* 6. within one file, non-overlapping */
	n = crf_loop(dst3, 0, dst3, 40000, 9000, "same-file copy");
	if (n != 9000)
		fail("same-file copy: copied %zu", n);
	memmove(dmodel + 40000, dmodel, 9000);
	expect_model(dst3, dmodel, dsize2, "same-file copy");
	note("extending and same-file copies ok");

	/* 7. FICLONE of the whole source onto a file holding other data */
	int cl = open_new(probe_path("clone"), 0);
	uint8_t *cmodel = xmalloc(SRC_SIZE);
	fill(cmodel, 20000, 3, 0);
	must_pwrite(cl, cmodel, 20000, 0, "clone target");
	if (ioctl(cl, FICLONE, src) == 0) {
		expect_model(cl, src_model, SRC_SIZE, "FICLONE result");
		note("FICLONE supported, data ok");
	} else {
		int e = errno;
		if (!clone_ok_errno(e))
			fail("FICLONE: unexpected errno %s", strerror(e));
		expect_model(cl, cmodel, 20000, "file after a failed FICLONE");
		note("FICLONE: %s (expected)", strerrorname_np(e));
	}

	/* 8. FICLONERANGE: two source pages at 4096 onto the destination at 8192 */
	int cr = open_new(probe_path("clonerange"), 0);
	fill(cmodel, 65536, 4, 0);
	must_pwrite(cr, cmodel, 65536, 0, "clonerange target");
	struct file_clone_range fcr = {.src_fd = src, .src_offset = 4096, .src_length = 8192, .dest_offset = 8192};
	if (ioctl(cr, FICLONERANGE, &fcr) == 0) {
		memcpy(cmodel + 8192, src_model + 4096, 8192);
		expect_model(cr, cmodel, 65536, "FICLONERANGE result");
		note("FICLONERANGE supported, data ok");
	} else {
		int e = errno;
		if (!clone_ok_errno(e))
			fail("FICLONERANGE: unexpected errno %s", strerror(e));
		expect_model(cr, cmodel, 65536, "file after a failed FICLONERANGE");
		note("FICLONERANGE: %s (expected)", strerrorname_np(e));
	}

	/* the sources never changed */
	expect_model(src, src_model, SRC_SIZE, "source at the end");
	expect_model(dst, src_model, SRC_SIZE, "whole-file copy at the end");
	close(src), close(dst), close(dst2), close(dst3), close(cl), close(cr);
	pass();
}
