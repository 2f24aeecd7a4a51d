/* mmap_fork DIR: MAP_SHARED and MAP_PRIVATE mappings of one file across fork(2).
 *  - a child's store through an inherited MAP_SHARED mapping is seen by the
 *    parent's mapping and by pread(2) after the child's msync;
 *  - a child's store through an inherited MAP_PRIVATE mapping is seen neither
 *    by the parent's private mapping, nor the shared one, nor pread;
 *  - the parent's MAP_PRIVATE copy keeps its own store after the file changes
 *    underneath (pwrite to the same page);
 *  - a mapping opened in the child sees what the parent wrote through its own;
 *  - coherence: pwrite is visible through MAP_SHARED at once, a store through
 *    MAP_SHARED is visible to pread at once (before msync), and after munmap +
 *    close + reopen;
 *  - the tail of the last page past EOF reads as zeros through the mapping. */
#include "probe.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define PAGES 8
#define SIZE (PAGES * PROBE_PAGE)

static void run_child(void (*body)(void *), void *arg, const char *what)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		alarm(PROBE_TIMEOUT_SECONDS);
		body(arg);
		_exit(0);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("%s: child failed (status 0x%x)", what, status);
}

static uint8_t *g_shared, *g_private;
static const char *g_path;

static void child_shared_store(void *arg)
{
	(void)arg;
	fill(g_shared + 1 * PROBE_PAGE, PROBE_PAGE, 2, 1 * PROBE_PAGE);
	if (msync(g_shared, SIZE, MS_SYNC) != 0)
		_exit(10);
}

static void child_private_store(void *arg)
{
	(void)arg;
	fill(g_private + 2 * PROBE_PAGE, PROBE_PAGE, 3, 2 * PROBE_PAGE);
	/* msync of a private mapping must not carry the data to the file */
	if (msync(g_private, SIZE, MS_SYNC) != 0)
		_exit(11);
}

/* The child maps the file afresh and checks page 4 holds seed 5 (stored by the parent). */
static void child_fresh_map(void *arg)
{
	(void)arg;
	int fd = open(g_path, O_RDWR);
	if (fd < 0)
		_exit(12);
	uint8_t *m = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		_exit(13);
	uint8_t want[PROBE_PAGE];
	fill(want, PROBE_PAGE, 5, 4 * PROBE_PAGE);
	if (memcmp(m + 4 * PROBE_PAGE, want, PROBE_PAGE) != 0)
		_exit(14);
	munmap(m, SIZE);
	close(fd);
}

int main(int argc, char **argv)
{
	probe_init("mmap_fork", argc, argv);
	g_path = probe_path("file");
	int fd = open_new(g_path, 0);

	uint8_t *base = xmalloc(SIZE), *page = xmalloc(PROBE_PAGE);
	fill(base, SIZE, 1, 0);
	must_pwrite(fd, base, SIZE, 0, "initial write");
	if (fsync(fd) != 0)
		fail("fsync: %s", strerror(errno));

	g_shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (g_shared == MAP_FAILED)
		fail("mmap(MAP_SHARED): %s", strerror(errno));
	g_private = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (g_private == MAP_FAILED)
		fail("mmap(MAP_PRIVATE): %s", strerror(errno));
	long d = first_diff(g_shared, base, SIZE);
	if (d >= 0)
		fail("MAP_SHARED mapping differs from the written data at offset %ld", d);
	d = first_diff(g_private, base, SIZE);
	if (d >= 0)
		fail("MAP_PRIVATE mapping differs from the written data at offset %ld", d);

	/* 1. child stores through the inherited shared mapping */
	run_child(child_shared_store, NULL, "MAP_SHARED store in child");
	fill(page, PROBE_PAGE, 2, 1 * PROBE_PAGE);
	memcpy(base + PROBE_PAGE, page, PROBE_PAGE);
	d = first_diff(g_shared + PROBE_PAGE, page, PROBE_PAGE);
	if (d >= 0)
		fail("child's MAP_SHARED store not seen by parent's shared mapping (offset %ld)", PROBE_PAGE + d);
	expect_bytes(fd, PROBE_PAGE, page, PROBE_PAGE, "child's MAP_SHARED store via pread");
	note("child MAP_SHARED store seen by parent mapping and pread");

	/* 2. child stores through the inherited private mapping: nobody else sees it */
	run_child(child_private_store, NULL, "MAP_PRIVATE store in child");
	d = first_diff(g_private + 2 * PROBE_PAGE, base + 2 * PROBE_PAGE, PROBE_PAGE);
	if (d >= 0)
		fail("child's MAP_PRIVATE store leaked into parent's private mapping (offset %ld)", 2 * PROBE_PAGE + d);
	d = first_diff(g_shared + 2 * PROBE_PAGE, base + 2 * PROBE_PAGE, PROBE_PAGE);
	if (d >= 0)
		fail("child's MAP_PRIVATE store leaked into the shared mapping (offset %ld)", 2 * PROBE_PAGE + d);
	expect_bytes(fd, 2 * PROBE_PAGE, base + 2 * PROBE_PAGE, PROBE_PAGE, "child's MAP_PRIVATE store must not reach the file");
	note("child MAP_PRIVATE store invisible to parent and file");

	/* 3. parent's private copy keeps its own store while the file changes */
	fill(g_private + 3 * PROBE_PAGE, PROBE_PAGE, 4, 3 * PROBE_PAGE);
	fill(page, PROBE_PAGE, 6, 3 * PROBE_PAGE);
	must_pwrite(fd, page, PROBE_PAGE, 3 * PROBE_PAGE, "pwrite under a private copy");
	memcpy(base + 3 * PROBE_PAGE, page, PROBE_PAGE);
	fill(page, PROBE_PAGE, 4, 3 * PROBE_PAGE);
	d = first_diff(g_private + 3 * PROBE_PAGE, page, PROBE_PAGE);
	if (d >= 0)
		fail("parent's MAP_PRIVATE copy lost its own store after pwrite (offset %ld)", 3 * PROBE_PAGE + d);
	expect_bytes(fd, 3 * PROBE_PAGE, base + 3 * PROBE_PAGE, PROBE_PAGE, "pwrite under a private copy, read back");
	d = first_diff(g_shared + 3 * PROBE_PAGE, base + 3 * PROBE_PAGE, PROBE_PAGE);
	if (d >= 0)
		fail("pwrite not visible through MAP_SHARED (offset %ld)", 3 * PROBE_PAGE + d);
	note("parent MAP_PRIVATE copy kept its store; pwrite visible via MAP_SHARED");

	/* 4. parent stores through its shared mapping; a fresh mapping in a child sees it */
	fill(g_shared + 4 * PROBE_PAGE, PROBE_PAGE, 5, 4 * PROBE_PAGE);
	fill(base + 4 * PROBE_PAGE, PROBE_PAGE, 5, 4 * PROBE_PAGE);
	if (msync(g_shared, SIZE, MS_SYNC) != 0)
		fail("msync: %s", strerror(errno));
	run_child(child_fresh_map, NULL, "fresh MAP_SHARED mapping in child");

	/* 5. coherence of stores through MAP_SHARED with pread, before any msync,
	 *    unaligned and across a page boundary */
	fill(page, 1000, 7, 5 * PROBE_PAGE - 500);
	memcpy(g_shared + 5 * PROBE_PAGE - 500, page, 1000);
	memcpy(base + 5 * PROBE_PAGE - 500, page, 1000);
	uint8_t got[1000];
	size_t n = must_pread(fd, got, sizeof(got), 5 * PROBE_PAGE - 500, "pread after MAP_SHARED store");
	d = n == sizeof(got) ? first_diff(got, page, sizeof(got)) : 0;
	if (d >= 0) {
		if (msync(g_shared, SIZE, MS_SYNC) != 0)
			fail("msync: %s", strerror(errno));
		n = must_pread(fd, got, sizeof(got), 5 * PROBE_PAGE - 500, "pread after MAP_SHARED store + msync");
		long d2 = n == sizeof(got) ? first_diff(got, page, sizeof(got)) : 0;
		fail("store through MAP_SHARED not visible to pread before msync (offset %ld); after msync: %s",
		     5 * PROBE_PAGE - 500 + d, d2 < 0 ? "visible" : "still not visible");
	}
	/* pwrite straddling two pages, seen through the mapping at once */
	fill(page, 3000, 8, 6 * PROBE_PAGE - 1234);
	must_pwrite(fd, page, 3000, 6 * PROBE_PAGE - 1234, "unaligned pwrite");
	memcpy(base + 6 * PROBE_PAGE - 1234, page, 3000);
	d = first_diff(g_shared + 6 * PROBE_PAGE - 1234, page, 3000);
	if (d >= 0)
		fail("unaligned pwrite not visible through MAP_SHARED (offset %ld)", 6 * PROBE_PAGE - 1234 + d);
	note("mmap store <-> pread/pwrite coherent without msync");

	/* 6. everything survives munmap + close + reopen */
	if (munmap(g_shared, SIZE) != 0 || munmap(g_private, SIZE) != 0)
		fail("munmap: %s", strerror(errno));
	if (close(fd) != 0)
		fail("close: %s", strerror(errno));
	fd = open(g_path, O_RDWR);
	if (fd < 0)
		fail("reopen: %s", strerror(errno));
	if (file_size(fd) != SIZE)
		fail("size after reopen is %lld, expected %d", (long long)file_size(fd), SIZE);
	expect_bytes(fd, 0, base, SIZE, "whole file after munmap, close, reopen");

	/* 7. the part of the last page past EOF maps as zeros; stores there never reach the file */
	if (ftruncate(fd, SIZE - 100) != 0)
		fail("ftruncate: %s", strerror(errno));
	uint8_t *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		fail("mmap after truncate: %s", strerror(errno));
	for (int i = SIZE - 100; i < SIZE; i++)
		if (m[i] != 0)
			fail("byte %d past EOF (size %d) maps as 0x%02x, expected 0", i, SIZE - 100, m[i]);
	m[SIZE - 50] = 0xAB;
	if (msync(m, SIZE, MS_SYNC) != 0)
		fail("msync: %s", strerror(errno));
	munmap(m, SIZE);
	if (file_size(fd) != SIZE - 100)
		fail("a store past EOF in the last mapped page changed the size to %lld", (long long)file_size(fd));
	if (ftruncate(fd, SIZE) != 0)
		fail("ftruncate: %s", strerror(errno));
	memset(base + SIZE - 100, 0, 100);
	/* POSIX: the extended area reads as zeros. Filesystems that write the page
	 * back zero its tail past EOF (ext4, FUSE); tmpfs keeps the stored bytes in
	 * its page cache and fails this check on Linux 6.18 too. */
	expect_bytes(fd, 0, base, SIZE,
		     "file regrown (ftruncate) after an msync'ed store past EOF in the last mapped page: POSIX wants zeros");
	note("tail past EOF maps as zeros and stays out of the file");
	close(fd);
	pass();
}
