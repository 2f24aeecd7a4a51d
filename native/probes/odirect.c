/* odirect DIR: O_DIRECT I/O with 4 KiB-aligned buffers (posix_memalign) at
 * aligned offsets: writes patterns, reads them back through O_DIRECT and
 * through a buffered descriptor; buffered writes are then read with O_DIRECT
 * (the kernel must write back cached pages first); the size must follow.
 * Finally an unaligned O_DIRECT request (odd file offset, length and buffer
 * address): EINVAL is an acceptable answer and is reported as such; a
 * success must have written exactly the right bytes. */
#include "probe.h"

struct extent {
	off_t off;
	size_t len;
	unsigned seed;
};

static void *aligned(size_t len)
{
	void *p = NULL;
	int e = posix_memalign(&p, PROBE_PAGE, len);
	if (e != 0)
		fail("posix_memalign(%zu): %s", len, strerror(e));
	return p;
}

int main(int argc, char **argv)
{
	probe_init("odirect", argc, argv);
	const char *path = probe_path("file");
	int dfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (dfd < 0)
		fail("open(O_DIRECT): %s", strerror(errno));
	int bfd = open(path, O_RDWR);
	if (bfd < 0)
		fail("open (buffered): %s", strerror(errno));

	static const struct extent ext[] = {
		{0, 4096, 1},
		{8192, 65536, 2},
		{1 << 20, 131072, 3},
		{4096, 4096, 4},       /* fills the gap between the first two */
		{(1 << 20) + 65536, 8192, 5}, /* overwrite inside the third */
		{3 << 20, 1 << 20, 6},         /* 1 MiB request, past EOF */
	};
	const size_t fsize = (3 << 20) + (1 << 20);
	uint8_t *model = calloc(fsize, 1);
	uint8_t *buf = aligned(1 << 20), *rbuf = aligned(1 << 20);
	if (!model)
		fail("out of memory");

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		fill(buf, ext[i].len, ext[i].seed, (uint64_t)ext[i].off);
		ssize_t n = pwrite(dfd, buf, ext[i].len, ext[i].off);
		if (n < 0)
			fail("O_DIRECT pwrite(%zu @ %lld): %s", ext[i].len, (long long)ext[i].off, strerror(errno));
		if ((size_t)n != ext[i].len)
			fail("O_DIRECT pwrite(%zu @ %lld) wrote %zd", ext[i].len, (long long)ext[i].off, n);
		memcpy(model + ext[i].off, buf, ext[i].len);
		/* read it back at once through O_DIRECT */
		memset(rbuf, 0, ext[i].len);
		n = pread(dfd, rbuf, ext[i].len, ext[i].off);
		if (n < 0)
			fail("O_DIRECT pread(%zu @ %lld): %s", ext[i].len, (long long)ext[i].off, strerror(errno));
		if ((size_t)n != ext[i].len)
			fail("O_DIRECT pread(%zu @ %lld) read %zd", ext[i].len, (long long)ext[i].off, n);
		long d = first_diff(rbuf, buf, ext[i].len);
		if (d >= 0)
			fail("O_DIRECT read-back differs at offset %lld", (long long)ext[i].off + d);
	}
	if ((size_t)file_size(dfd) != fsize)
		fail("size after O_DIRECT writes is %lld, expected %zu", (long long)file_size(dfd), fsize);
	/* the whole file through both paths; holes read as zeros */
	for (size_t off = 0; off < fsize; off += 1 << 20) {
		ssize_t n = pread(dfd, rbuf, 1 << 20, (off_t)off);
		if (n != 1 << 20)
			fail("O_DIRECT pread of 1 MiB @ %zu returned %zd (%s)", off, n, n < 0 ? strerror(errno) : "short");
		long d = first_diff(rbuf, model + off, 1 << 20);
		if (d >= 0)
			fail("O_DIRECT full read differs at offset %zu (0x%02x, expected 0x%02x)", off + d, rbuf[d], model[off + d]);
	}
	expect_bytes(bfd, 0, model, fsize, "buffered read of O_DIRECT data");
	note("aligned O_DIRECT write/read of 4 KiB..1 MiB ok, buffered view agrees");

	/* buffered write, then O_DIRECT read must see it (cached pages written back) */
	fill(buf, 12288, 7, 2 << 20);
	must_pwrite(bfd, buf, 12288, 2 << 20, "buffered pwrite");
	memcpy(model + (2 << 20), buf, 12288);
	ssize_t n = pread(dfd, rbuf, 16384, 2 << 20);
	if (n != 16384)
		fail("O_DIRECT pread after buffered write returned %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	long d = first_diff(rbuf, model + (2 << 20), 16384);
	if (d >= 0)
		fail("O_DIRECT read does not see a buffered write at offset %ld", (2L << 20) + d);
	note("buffered write visible to O_DIRECT read");

	/* O_DIRECT read at EOF returns 0; a read straddling EOF is short */
	n = pread(dfd, rbuf, 4096, (off_t)fsize);
	if (n != 0)
		fail("O_DIRECT pread at EOF returned %zd (%s)", n, n < 0 ? strerror(errno) : "expected 0");

	/* unaligned O_DIRECT: offset 1000, 3000 bytes, buffer address +1 */
	fill(buf + 1, 3000, 9, 1000);
	n = pwrite(dfd, buf + 1, 3000, 1000);
	if (n < 0 && errno == EINVAL) {
		note("unaligned O_DIRECT pwrite: EINVAL (acceptable)");
	} else if (n < 0) {
		fail("unaligned O_DIRECT pwrite: %s (expected success or EINVAL)", strerror(errno));
	} else {
		if (n != 3000)
			fail("unaligned O_DIRECT pwrite wrote %zd of 3000", n);
		memcpy(model + 1000, buf + 1, 3000);
		note("unaligned O_DIRECT pwrite accepted");
	}
	n = pread(dfd, rbuf + 1, 3000, 1000);
	if (n < 0 && errno == EINVAL) {
		note("unaligned O_DIRECT pread: EINVAL (acceptable)");
	} else if (n < 0) {
		fail("unaligned O_DIRECT pread: %s (expected success or EINVAL)", strerror(errno));
	} else {
		if (n != 3000)
			fail("unaligned O_DIRECT pread read %zd of 3000", n);
		d = first_diff(rbuf + 1, model + 1000, 3000);
		if (d >= 0)
			fail("unaligned O_DIRECT pread differs at offset %ld", 1000 + d);
		note("unaligned O_DIRECT pread accepted");
	}
	expect_bytes(bfd, 0, model, fsize, "whole file, buffered, at the end");
	close(dfd);
	dfd = open(path, O_RDONLY | O_DIRECT);
	if (dfd < 0)
		fail("reopen O_DIRECT: %s", strerror(errno));
	for (size_t off = 0; off < fsize; off += 1 << 20) {
		n = pread(dfd, rbuf, 1 << 20, (off_t)off);
		if (n != 1 << 20)
			fail("O_DIRECT pread after reopen @ %zu returned %zd", off, n);
		d = first_diff(rbuf, model + off, 1 << 20);
		if (d >= 0)
			fail("O_DIRECT read after reopen differs at offset %zu", off + d);
	}
	close(dfd);
	close(bfd);
	pass();
}
