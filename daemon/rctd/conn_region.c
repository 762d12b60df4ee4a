/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A session's regions in rctd: the guest RAM and dirty-bitmap files a client
 * passes, checked, counted against rctd's registered-memory limit, mapped
 * (never populated; read-only on the primary) and registered with the session
 * before it connects.
 *
 * A file is either a memfd sealed with F_SEAL_SHRINK (it cannot shrink under
 * the mapping) or any other regular file: an unsealed memfd, QEMU's
 * memory-backend-file on /dev/shm or hugetlbfs.  Those are kept open and their
 * size re-checked at every checkpoint step (conn_regions_check()); a shrink
 * between two checks raises SIGBUS in this thread, which guard.c turns into
 * the end of this session instead of rctd's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "conn.h"

struct rctd_region *conn_region(struct rctd_conn *c, uint32_t id)
{
	for (unsigned i = 0; i < c->nregions; i++)
		if (c->regions[i].id == id)
			return &c->regions[i];
	return NULL;
}

static void region_unmap(struct rctd_conn *c, struct rctd_region *g)
{
	if (g->file_fd >= 0)
		close(g->file_fd);
	if (g->bmap_fd >= 0)
		close(g->bmap_fd);
	if (g->ram)
		munmap(g->ram, g->size);
	if (g->bmap)
		munmap(g->bmap, g->bmap_len);
	if (g->reserved)
		conn_uncharge(c, g->size, g->kept_fds);
	memset(g, 0, sizeof(*g));
}

/* Under d->lock: what uid @uid's connections hold (bytes, descriptors). */
static void tenant_holds(const struct rctd *d, uid_t uid, uint64_t *bytes_p, unsigned *fds_p)
{
	*bytes_p = 0;
	*fds_p = 0;
	for (const struct rctd_conn *o = d->conns; o; o = o->next) {
		if (o->uid != uid)
			continue;
		*bytes_p += o->charged;
		*fds_p += o->kept_fds;
	}
}

int conn_charge(struct rctd_conn *c, uint64_t bytes, unsigned fds, const char *what,
		struct reply *r)
{
	struct rctd *d = c->d;
	uint64_t max = d->cfg.max_registered, used, mine = 0;
	uint64_t mine_max = d->cfg.max_registered_per_uid;
	unsigned fds_used, fds_mine = 0, fds_mine_max = d->cfg.max_fds_per_uid;

	pthread_mutex_lock(&d->lock);
	used = d->registered;
	fds_used = d->kept_fds;
	if (!c->admin)
		tenant_holds(d, c->uid, &mine, &fds_mine);
	if (bytes > max || used > max - bytes) {
		pthread_mutex_unlock(&d->lock);
		return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY,
				  "%s: %" PRIu64 " MiB would bring what this rctd holds to %" PRIu64
				  " MiB, above its limit of %" PRIu64 " MiB (--max-registered)",
				  what, bytes >> 20, (used + bytes) >> 20, max >> 20);
	}
	if (!c->admin && (bytes > mine_max || mine > mine_max - bytes)) {
		pthread_mutex_unlock(&d->lock);
		return reply_fail(
			r, -EDQUOT, RCT_ERR_NO_MEMORY,
			"%s: %" PRIu64 " MiB would bring what uid %u holds in this rctd to "
			"%" PRIu64 " MiB, above its limit of %" PRIu64
			" MiB (--max-registered-per-uid)",
			what, bytes >> 20, (unsigned)c->uid, (mine + bytes) >> 20, mine_max >> 20);
	}
	if (fds && fds_used + fds > d->fd_budget) {
		pthread_mutex_unlock(&d->lock);
		return reply_fail(r, -EMFILE, RCT_ERR_NO_SPACE,
				  "%s: rctd keeps %u descriptors of guest files, its budget of %u "
				  "(from its RLIMIT_NOFILE) is spent",
				  what, fds_used, d->fd_budget);
	}
	if (fds && !c->admin && fds_mine + fds > fds_mine_max) {
		pthread_mutex_unlock(&d->lock);
		return reply_fail(r, -EDQUOT, RCT_ERR_NO_SPACE,
				  "%s: uid %u's connections keep %u descriptors of guest files in "
				  "rctd, its limit (--max-fds-per-uid %u); seal the files with "
				  "F_SEAL_SHRINK to need fewer",
				  what, (unsigned)c->uid, fds_mine, fds_mine_max);
	}
	d->registered += bytes;
	d->kept_fds += fds;
	c->charged += bytes;
	c->kept_fds += fds;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void conn_uncharge(struct rctd_conn *c, uint64_t bytes, unsigned fds)
{
	pthread_mutex_lock(&c->d->lock);
	c->d->registered -= bytes;
	c->d->kept_fds -= fds;
	c->charged -= bytes;
	c->kept_fds -= fds;
	pthread_mutex_unlock(&c->d->lock);
}

void conn_regions_release(struct rctd_conn *c)
{
	for (unsigned i = 0; i < c->nregions; i++)
		region_unmap(c, &c->regions[i]);
	c->nregions = 0;
}

/*
 * A file the daemon maps: a regular file of at least @end bytes.  *@keep_p
 * gets a descriptor of it to re-check its size by, or -1 when it is sealed
 * against shrinking.  *@page_p (may be NULL) the file's page size.
 */
static int check_file(struct reply *r, int fd, const char *what, uint32_t id, uint64_t end,
		      int *keep_p, uint64_t *page_p)
{
	struct statfs fs;
	struct stat sb;
	int seals;

	*keep_p = -1;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "region %u: %s is not a regular file", id, what);
	if ((uint64_t)sb.st_size < end)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "region %u: %s has %lld bytes, the region needs %" PRIu64, id,
				  what, (long long)sb.st_size, end);
	if (page_p) {
		/* hugetlbfs maps and faults in huge pages only: st_blksize is
		 * its page size.  Elsewhere the base page. */
		if (fstatfs(fd, &fs))
			return reply_fail(r, -errno, RCT_ERR_SYSTEM, "region %u: fstatfs of %s: %s",
					  id, what, strerror(errno));
		*page_p = fs.f_type == HUGETLBFS_MAGIC ? (uint64_t)sb.st_blksize
						       : (uint64_t)sysconf(_SC_PAGESIZE);
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_SHRINK))
		return 0;
	*keep_p = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (*keep_p < 0)
		return reply_fail(r, -errno, RCT_ERR_SYSTEM, "region %u: keeping %s: %s", id, what,
				  strerror(errno));
	return 0;
}

/* The primary only reads its guest: read-only where its backend can register that. */
static int ram_prot(const struct rctd_conn *c)
{
	if (c->role == RCT_ROLE_PRIMARY && rct_backend_source_read_only(c->backend) == 1)
		return PROT_READ;
	return PROT_READ | PROT_WRITE;
}

/* A kept file's size against what the region needs: 0, or -1 with @why. */
static int file_still_holds(int fd, uint64_t end, char *why, size_t len, const char *what)
{
	struct stat sb;

	if (fd < 0)
		return 0;
	if (fstat(fd, &sb)) {
		snprintf(why, len, "fstat of %s: %s", what, strerror(errno));
		return -1;
	}
	if ((uint64_t)sb.st_size >= end)
		return 0;
	snprintf(why, len, "%s shrank to %lld bytes under rctd, the region needs %" PRIu64, what,
		 (long long)sb.st_size, end);
	return -1;
}

int conn_regions_check(struct rctd_conn *c, struct reply *r)
{
	char why[160];

	for (unsigned i = 0; i < c->nregions; i++) {
		struct rctd_region *g = &c->regions[i];

		if (!file_still_holds(g->ram_unsealed ? g->file_fd : -1, g->ram_end, why,
				      sizeof(why), "the guest RAM file") &&
		    !file_still_holds(g->bmap_fd, g->bmap_end, why, sizeof(why),
				      "the dirty-bitmap file"))
			continue;
		rctd_warn("session %s: region %u%s%s%s: %s; ending the session", c->name, g->id,
			  g->name[0] ? " (" : "", g->name, g->name[0] ? ")" : "", why);
		reply_fail(r, -EIO, RCT_ERR_INVALID_PARAM, "region %u: %s; the session is ended",
			   g->id, why);
		/* Its mappings may not be touched again: the session goes, with
		 * a GOODBYE to the peer. */
		conn_session_close(c);
		return r->status;
	}
	return 0;
}

int h_region_add(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		 union ipc_body *out, struct reply *r)
{
	const struct ipc_region_add *w = &in->region_add;
	long pgsz = sysconf(_SC_PAGESIZE);
	struct rctd_region g = {0};
	uint64_t bytes, bstart, sum_bytes;
	char what[32];
	struct stat sb;

	g.id = w->id;
	g.size = w->size;
	if (conn_region(c, g.id))
		return reply_fail(r, -EEXIST, RCT_ERR_EXISTS, "region %u exists", g.id);
	if (c->nregions == RCTD_MAX_REGIONS)
		return reply_fail(r, -ENOSPC, RCT_ERR_NO_SPACE, "at most %d regions",
				  RCTD_MAX_REGIONS);
	if (!g.size || g.size % c->page_size || w->offset % (uint64_t)pgsz ||
	    w->bitmap_offset % 8 || w->offset > UINT64_MAX / 2 || g.size > UINT64_MAX / 2 ||
	    w->bitmap_offset > UINT64_MAX / 2)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "region %u: size %" PRIu64 " offset %" PRIu64
				  " bitmap offset %" PRIu64
				  ": size a multiple of %u, offset page-aligned, bitmap 8-aligned",
				  g.id, g.size, w->offset, w->bitmap_offset, c->page_size);
	g.pages = g.size / c->page_size;
	g.bmap_fd = g.file_fd = -1;
	g.offset = w->offset;
	g.ram_end = w->offset + g.size;
	bytes = (g.pages + 63) / 64 * 8;
	g.bmap_end = w->bitmap_offset + bytes;
	snprintf(g.name, sizeof(g.name), "%s", w->name);
	if (check_file(r, m->fds[0], "the guest RAM file", g.id, g.ram_end, &g.file_fd,
		       &g.file_page) ||
	    check_file(r, m->fds[1], "the dirty-bitmap file", g.id, g.bmap_end, &g.bmap_fd, NULL)) {
		region_unmap(c, &g);
		return r->status;
	}
	if (w->offset % g.file_page || g.size % g.file_page) {
		reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
			   "region %u: offset %" PRIu64 " and size %" PRIu64
			   " must be multiples of the guest RAM file's page size %" PRIu64
			   " (hugetlbfs)",
			   g.id, w->offset, g.size, g.file_page);
		region_unmap(c, &g);
		return r->status;
	}
	/* The RAM file is kept either way (the session finds its holes by
	 * it), and re-checked by the same descriptor when it is unsealed. */
	g.ram_unsealed = g.file_fd >= 0;
	g.kept_fds = 1 + (g.bmap_fd >= 0);
	snprintf(what, sizeof(what), "region %u", g.id);
	if (conn_charge(c, g.size, g.kept_fds, what, r)) {
		region_unmap(c, &g);
		return r->status;
	}
	g.reserved = true;
	if (g.file_fd < 0)
		g.file_fd = fcntl(m->fds[0], F_DUPFD_CLOEXEC, 0);
	if (g.file_fd < 0) {
		int err = errno;

		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_SYSTEM, "region %u: keeping its RAM file: %s",
				  g.id, strerror(err));
	}
	/* Not populated: the guest's memory is the hypervisor's, and a sparse
	 * file (a large guest that touched little) must stay sparse. */
	g.ram = mmap(NULL, g.size, ram_prot(c), MAP_SHARED, m->fds[0], (off_t)w->offset);
	if (g.ram == MAP_FAILED) {
		int err = errno;

		g.ram = NULL;
		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_NO_MEMORY,
				  "mmap of region %u (%" PRIu64 " bytes): %s", g.id, g.size,
				  strerror(err));
	}
	/* A summary after the bitmap (CKPT_DIRTY's RCT_IPC_TAKE_SUMMARY) is
	 * mapped with it when the file holds one; the file must then keep it. */
	sum_bytes = (bytes / 8 + 63) / 64 * 8;
	if (!fstat(m->fds[1], &sb) && (uint64_t)sb.st_size >= g.bmap_end + sum_bytes) {
		g.bmap_end += sum_bytes;
		bytes += sum_bytes;
	} else {
		sum_bytes = 0;
	}
	bstart = w->bitmap_offset / (uint64_t)pgsz * (uint64_t)pgsz;
	g.bmap_len = (size_t)(w->bitmap_offset - bstart + bytes);
	g.bmap = mmap(NULL, g.bmap_len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[1],
		      (off_t)bstart);
	if (g.bmap == MAP_FAILED) {
		int err = errno;

		g.bmap = NULL;
		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_NO_MEMORY, "mmap of region's bitmap: %s",
				  strerror(err));
	}
	g.bits = (uint64_t *)((uint8_t *)g.bmap + (w->bitmap_offset - bstart));
	g.sum = sum_bytes ? g.bits + (bytes - sum_bytes) / 8 : NULL;
	c->regions[c->nregions++] = g;
	rctd_info("session %s: region %u%s%s%s, %" PRIu64 " MiB, %" PRIu64 " pages%s%s%s", c->name,
		  g.id, g.name[0] ? " (" : "", g.name, g.name[0] ? ")" : "", g.size >> 20, g.pages,
		  g.file_page > (uint64_t)pgsz ? ", huge pages" : "",
		  g.ram_unsealed ? ", unsealed (size re-checked)" : "",
		  g.sum ? ", bitmap with a summary" : "");
	out->pages = g.pages;
	r->has_body = true;
	return 0;
}

int h_region_remove(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		    union ipc_body *out, struct reply *r)
{
	struct rctd_region *g;

	(void)m;
	(void)out;
	g = conn_region(c, in->region_id);
	if (!g)
		return reply_fail(r, -ENOENT, RCT_ERR_NOT_FOUND, "no region %u", in->region_id);
	region_unmap(c, g);
	*g = c->regions[--c->nregions];
	return 0;
}

/* Register the daemon's regions with the session, before it connects. */
int conn_register_regions(struct rctd_conn *c, struct reply *r)
{
	rct_status_t st;

	if (!c->nregions)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "add a region first");
	for (unsigned i = 0; i < c->nregions; i++) {
		struct rctd_region *g = &c->regions[i];

		if (g->rr)
			continue;
		st = rct_region_register(c->sess, g->id, g->ram, g->size, &g->rr);
		if (st == RCT_OK && g->name[0])
			st = rct_region_set_name(g->rr, g->name);
		/* Its holes are not read, not sent and, on the secondary, not zeroed. */
		if (st == RCT_OK)
			st = rct_region_set_file(g->rr, g->file_fd, g->offset);
		if (st != RCT_OK)
			return reply_fail(r, ipc_errno_of(st), st, "registering region %u: %s",
					  g->id, rct_status_str(st));
	}
	return 0;
}
