/*
 * nullfs_ll - the libfuse3 low-level peer of DedupFs's C# "null" filesystem.
 *
 * Purpose: a reference FUSE server whose per-request work is as close to
 * zero as possible, so that benchmarking DedupFs's C# null filesystem against
 * it compares the FUSE transports (C# over /dev/fuse vs. libfuse), not the
 * filesystems.  Both must implement the same "null filesystem" spec:
 *
 *   - root directory: inode 1, mode 040755, nlink 2
 *   - "zero": inode 2, mode 0100644, size 1 TiB, nlink 1; OPEN replies with
 *     FOPEN_DIRECT_IO, fh 0; READ returns zeros (clamped at EOF); WRITE
 *     claims the full size and discards the data
 *   - any other name in the root may be made with CREATE (FOPEN_DIRECT_IO):
 *     fresh inode number (counter from 3), regular file of size 0, mode as
 *     requested; LOOKUP finds it, GETATTR works while it is linked, UNLINK
 *     removes it; FLUSH/RELEASE succeed; STATFS plausible; OPENDIR/READDIR
 *     of the root list ".", "..", "zero" and created names; FORGET ignored
 *   - entry and attribute timeouts are 0 s
 *
 * Runs multi-threaded (fuse_session_loop_mt) with clone_fd=1 and in the
 * foreground.  Usage: nullfs_ll MOUNTPOINT [-o opts] [-d]
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <fuse_lowlevel.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define ROOT_INO 1
#define ZERO_INO 2
#define FIRST_DYN_INO 3
#define ZERO_NAME "zero"
#define ZERO_SIZE (1ULL << 40)
#define MAX_WRITE (1U << 20)

/* Zero buffer big enough for any READ the kernel sends (max_pages = 256). */
static const char zero_buf[MAX_WRITE];

/* One created file.  Lives in two trees: by name and by inode. */
struct node {
	fuse_ino_t ino;
	mode_t mode;
	char *name;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static void *by_name; /* tsearch root, keyed by name */
static void *by_ino;  /* tsearch root, keyed by inode */
static fuse_ino_t next_ino = FIRST_DYN_INO;
static size_t node_count;
static struct timespec start_time;
static uid_t owner_uid;
static gid_t owner_gid;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->name,
		      ((const struct node *)b)->name);
}

static int cmp_ino(const void *a, const void *b)
{
	fuse_ino_t x = ((const struct node *)a)->ino;
	fuse_ino_t y = ((const struct node *)b)->ino;
	return (x > y) - (x < y);
}

/* Caller holds table_lock. */
static struct node *find_name(const char *name)
{
	struct node key = { .name = (char *)name };
	void *p = tfind(&key, &by_name, cmp_name);
	return p ? *(struct node **)p : NULL;
}

/* Caller holds table_lock. */
static struct node *find_ino(fuse_ino_t ino)
{
	struct node key = { .ino = ino };
	void *p = tfind(&key, &by_ino, cmp_ino);
	return p ? *(struct node **)p : NULL;
}

static void fill_common(struct stat *st, fuse_ino_t ino)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = owner_uid;
	st->st_gid = owner_gid;
	st->st_blksize = 4096;
	st->st_atim = start_time;
	st->st_mtim = start_time;
	st->st_ctim = start_time;
}

/* Fills *st for a live inode; returns 0 or ENOENT. */
static int get_attr(fuse_ino_t ino, struct stat *st)
{
	fill_common(st, ino);
	if (ino == ROOT_INO) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (ino == ZERO_INO) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)ZERO_SIZE;
		st->st_blocks = (blkcnt_t)(ZERO_SIZE / 512);
		return 0;
	}
	pthread_mutex_lock(&table_lock);
	struct node *n = find_ino(ino);
	mode_t mode = n ? n->mode : 0;
	pthread_mutex_unlock(&table_lock);
	if (!n)
		return ENOENT;
	st->st_mode = mode;
	st->st_nlink = 1;
	st->st_size = 0;
	return 0;
}

static void fill_entry(struct fuse_entry_param *e, fuse_ino_t ino)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = 1;
	e->attr_timeout = 0.0;
	e->entry_timeout = 0.0;
}

static void nullfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* libfuse turns max_write > 32 pages into FUSE_MAX_PAGES with
	 * max_pages = max_write / page size (256 for 1 MiB). */
	conn->max_write = MAX_WRITE;
	/* max_readahead: keep what the kernel offered. */
	if (getenv("NULLFS_LL_VERBOSE"))
		fprintf(stderr,
			"nullfs_ll: init proto %u.%u max_write %u "
			"max_readahead %u max_read %u capable 0x%x want 0x%x\n",
			conn->proto_major, conn->proto_minor, conn->max_write,
			conn->max_readahead, conn->max_read, conn->capable,
			conn->want);
}

static void nullfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;

	if (parent != ROOT_INO) {
		fuse_reply_err(req, parent == ZERO_INO ? ENOTDIR : ENOENT);
		return;
	}
	if (strcmp(name, ZERO_NAME) == 0) {
		ino = ZERO_INO;
	} else {
		pthread_mutex_lock(&table_lock);
		struct node *n = find_name(name);
		if (n)
			ino = n->ino;
		pthread_mutex_unlock(&table_lock);
	}
	fill_entry(&e, ino);
	if (ino == 0 || get_attr(ino, &e.attr) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void nullfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct stat st;
	(void)fi;
	int err = get_attr(ino, &st);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0.0);
}

static void nullfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct stat st;
	int err = get_attr(ino, &st);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->fh = 0;
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void nullfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			  mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct node *n;

	if (parent != ROOT_INO) {
		fuse_reply_err(req, parent == ZERO_INO ? ENOTDIR : ENOENT);
		return;
	}
	if (strcmp(name, ZERO_NAME) == 0) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	n = malloc(sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n->mode = S_IFREG | (mode & 07777);

	pthread_mutex_lock(&table_lock);
	if (find_name(name)) {
		pthread_mutex_unlock(&table_lock);
		free(n->name);
		free(n);
		fuse_reply_err(req, EEXIST);
		return;
	}
	n->ino = next_ino++;
	if (!tsearch(n, &by_name, cmp_name)) {
		pthread_mutex_unlock(&table_lock);
		free(n->name);
		free(n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!tsearch(n, &by_ino, cmp_ino)) {
		tdelete(n, &by_name, cmp_name);
		pthread_mutex_unlock(&table_lock);
		free(n->name);
		free(n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	node_count++;
	pthread_mutex_unlock(&table_lock);

	fill_entry(&e, n->ino);
	fill_common(&e.attr, e.ino);
	e.attr.st_mode = S_IFREG | (mode & 07777);
	e.attr.st_nlink = 1;
	fi->fh = 0;
	fi->direct_io = 1;
	fuse_reply_create(req, &e, fi);
}

static void nullfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *n;

	if (parent != ROOT_INO) {
		fuse_reply_err(req, parent == ZERO_INO ? ENOTDIR : ENOENT);
		return;
	}
	if (strcmp(name, ZERO_NAME) == 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	pthread_mutex_lock(&table_lock);
	n = find_name(name);
	if (n) {
		tdelete(n, &by_name, cmp_name);
		tdelete(n, &by_ino, cmp_ino);
		node_count--;
	}
	pthread_mutex_unlock(&table_lock);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	free(n->name);
	free(n);
	fuse_reply_err(req, 0);
}

static void nullfs_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	uint64_t fsize;
	(void)fi;

	if (ino == ZERO_INO) {
		fsize = ZERO_SIZE;
	} else {
		struct stat st;
		int err = get_attr(ino, &st);
		if (err) {
			fuse_reply_err(req, err);
			return;
		}
		fsize = (uint64_t)st.st_size;
	}
	if (off < 0 || (uint64_t)off >= fsize)
		size = 0;
	else if (size > fsize - (uint64_t)off)
		size = (size_t)(fsize - (uint64_t)off);

	if (size <= sizeof(zero_buf)) {
		fuse_reply_buf(req, zero_buf, size);
	} else {
		/* Not expected with max_pages = 256, but stay correct. */
		char *buf = calloc(1, size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		fuse_reply_buf(req, buf, size);
		free(buf);
	}
}

static void nullfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			 size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)off;
	(void)fi;
	fuse_reply_write(req, size);
}

static void nullfs_flush(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nullfs_release(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nullfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void nullfs_forget_multi(fuse_req_t req, size_t count,
				struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void nullfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = 1ULL << 30; /* 4 TiB */
	sv.f_bfree = 1ULL << 30;
	sv.f_bavail = 1ULL << 30;
	sv.f_files = 1ULL << 20;
	pthread_mutex_lock(&table_lock);
	sv.f_ffree = sv.f_files - 2 - node_count;
	pthread_mutex_unlock(&table_lock);
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- directory listing: built at OPENDIR, served by READDIR ---- */

struct dirbuf {
	char *p;
	size_t size;
};

static int dirbuf_add(fuse_req_t req, struct dirbuf *b, const char *name,
		      fuse_ino_t ino, mode_t mode)
{
	struct stat st;
	size_t len = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	char *np = realloc(b->p, b->size + len);
	if (!np)
		return -1;
	b->p = np;
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = mode;
	/* The offset of an entry is the offset of the one after it. */
	fuse_add_direntry(req, b->p + b->size, len, name, &st,
			  (off_t)(b->size + len));
	b->size += len;
	return 0;
}

struct walk_ctx {
	fuse_req_t req;
	struct dirbuf *b;
	int failed;
};

static __thread struct walk_ctx *walk_ctx;

static void walk_add(const void *nodep, VISIT which, int depth)
{
	(void)depth;
	if (which != postorder && which != leaf)
		return;
	const struct node *n = *(struct node *const *)nodep;
	if (!walk_ctx->failed &&
	    dirbuf_add(walk_ctx->req, walk_ctx->b, n->name, n->ino, n->mode))
		walk_ctx->failed = 1;
}

static void nullfs_opendir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct dirbuf *b;
	struct walk_ctx ctx;

	if (ino != ROOT_INO) {
		struct stat st;
		fuse_reply_err(req, get_attr(ino, &st) ? ENOENT : ENOTDIR);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ctx.req = req;
	ctx.b = b;
	ctx.failed = dirbuf_add(req, b, ".", ROOT_INO, S_IFDIR) ||
		     dirbuf_add(req, b, "..", ROOT_INO, S_IFDIR) ||
		     dirbuf_add(req, b, ZERO_NAME, ZERO_INO, S_IFREG);
	if (!ctx.failed) {
		pthread_mutex_lock(&table_lock);
		walk_ctx = &ctx;
		twalk(by_name, walk_add);
		walk_ctx = NULL;
		pthread_mutex_unlock(&table_lock);
	}
	if (ctx.failed) {
		free(b->p);
		free(b);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)b;
	fuse_reply_open(req, fi);
}

static void nullfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
	(void)ino;

	if (off < 0 || (size_t)off >= b->size)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, b->p + off,
			       b->size - (size_t)off < size ?
				       b->size - (size_t)off : size);
}

static void nullfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			      struct fuse_file_info *fi)
{
	struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
	(void)ino;
	if (b) {
		free(b->p);
		free(b);
	}
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops nullfs_ops = {
	.init = nullfs_init,
	.lookup = nullfs_lookup,
	.forget = nullfs_forget,
	.forget_multi = nullfs_forget_multi,
	.getattr = nullfs_getattr,
	.open = nullfs_open,
	.create = nullfs_create,
	.unlink = nullfs_unlink,
	.read = nullfs_read,
	.write = nullfs_write,
	.flush = nullfs_flush,
	.release = nullfs_release,
	.statfs = nullfs_statfs,
	.opendir = nullfs_opendir,
	.readdir = nullfs_readdir,
	.releasedir = nullfs_releasedir,
};

static void usage(const char *prog)
{
	printf("usage: %s MOUNTPOINT [-o opts] [-d]\n"
	       "libfuse3 low-level null filesystem (multi-threaded, "
	       "clone_fd, foreground).\n"
	       "Set NULLFS_LL_VERBOSE=1 to log the negotiated INIT "
	       "parameters.\n\n",
	       prog);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *config = NULL;
	struct fuse_session *se;
	int ret = 1;

	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 1;
	if (opts.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (opts.mountpoint == NULL) {
		usage(argv[0]);
		goto out_args;
	}

	clock_gettime(CLOCK_REALTIME, &start_time);
	owner_uid = getuid();
	owner_gid = getgid();

	se = fuse_session_new(&args, &nullfs_ops, sizeof(nullfs_ops), NULL);
	if (se == NULL)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;

	/* Always foreground: no fuse_daemonize(0). */
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		config = fuse_loop_cfg_create();
		if (!config) {
			fprintf(stderr, "nullfs_ll: fuse_loop_cfg_create failed\n");
			ret = 1;
			goto out_unmount;
		}
		fuse_loop_cfg_set_clone_fd(config, 1);
		if (opts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(config,
						       opts.max_idle_threads);
		fuse_loop_cfg_set_max_threads(config, opts.max_threads);
		ret = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
	}
	/* fuse_session_loop* return >0 (a signal number) or <0 (an errno). */
	ret = ret < 0 ? 1 : 0;

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
