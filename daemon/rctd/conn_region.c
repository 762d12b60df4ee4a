/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A session's regions in rctd: the guest RAM and dirty-bitmap files a client
 * passes, checked, counted against rctd's registered-memory limit, mapped
 * (never populated) and registered with the session before it connects.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	if (g->ram)
		munmap(g->ram, g->size);
	if (g->bmap)
		munmap(g->bmap, g->bmap_len);
	if (g->reserved) {
		pthread_mutex_lock(&c->d->lock);
		c->d->registered -= g->size;
		pthread_mutex_unlock(&c->d->lock);
	}
	memset(g, 0, sizeof(*g));
}

/*
 * Count @g's size against rctd's registered-memory limit, before anything is
 * mapped: what a client asks for becomes pinned guest RAM on the primary
 * (verbs) and an equal, populated colo cache on the secondary.
 */
static int region_reserve(struct rctd_conn *c, struct rctd_region *g, struct reply *r)
{
	struct rctd *d = c->d;
	uint64_t max = d->cfg.max_registered, used;

	pthread_mutex_lock(&d->lock);
	used = d->registered;
	if (g->size <= max && used <= max - g->size) {
		d->registered += g->size;
		g->reserved = true;
	}
	pthread_mutex_unlock(&d->lock);
	if (g->reserved)
		return 0;
	return reply_fail(r, -ENOMEM, RCT_ERR_NO_MEMORY,
			  "region %u: %" PRIu64
			  " MiB would bring what this rctd registers to %" PRIu64
			  " MiB, above its limit of %" PRIu64 " MiB (--max-registered)",
			  g->id, g->size >> 20, (used + g->size) >> 20, max >> 20);
}

void conn_regions_release(struct rctd_conn *c)
{
	for (unsigned i = 0; i < c->nregions; i++)
		region_unmap(c, &c->regions[i]);
	c->nregions = 0;
}

/* A file the daemon maps must not shrink under it (SIGBUS) and must be big enough. */
static int check_file(struct reply *r, int fd, const char *what, uint64_t end)
{
	struct stat sb;
	int seals;

	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode))
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM, "%s is not a regular file",
				  what);
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return reply_fail(r, -EPERM, RCT_ERR_INVALID_PARAM,
				  "%s must be a memfd sealed with F_SEAL_SHRINK", what);
	if ((uint64_t)sb.st_size < end)
		return reply_fail(r, -EINVAL, RCT_ERR_INVALID_PARAM,
				  "%s has %lld bytes, the region needs %" PRIu64, what,
				  (long long)sb.st_size, end);
	return 0;
}

int h_region_add(struct rctd_conn *c, const struct ipc_msg *m, const union ipc_body *in,
		 union ipc_body *out, struct reply *r)
{
	const struct ipc_region_add *w = &in->region_add;
	long pgsz = sysconf(_SC_PAGESIZE);
	struct rctd_region g = {0};
	uint64_t bytes, bstart;

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
	bytes = (g.pages + 63) / 64 * 8;
	if (check_file(r, m->fds[0], "the guest RAM file", w->offset + g.size) ||
	    check_file(r, m->fds[1], "the dirty-bitmap file", w->bitmap_offset + bytes) ||
	    region_reserve(c, &g, r))
		return r->status;
	/* Not populated: the guest's memory is the hypervisor's, and a sparse
	 * memfd (a large guest that touched little) must stay sparse. */
	g.ram = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], (off_t)w->offset);
	if (g.ram == MAP_FAILED) {
		int err = errno;

		g.ram = NULL;
		region_unmap(c, &g);
		return reply_fail(r, -err, RCT_ERR_NO_MEMORY,
				  "mmap of region %u (%" PRIu64 " bytes): %s", g.id, g.size,
				  strerror(err));
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
	c->regions[c->nregions++] = g;
	rctd_info("session %s: region %u, %" PRIu64 " MiB, %" PRIu64 " pages", c->name, g.id,
		  g.size >> 20, g.pages);
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
		if (st != RCT_OK)
			return reply_fail(r, ipc_errno_of(st), st, "registering region %u: %s",
					  g->id, rct_status_str(st));
	}
	return 0;
}
