/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest regions of a session: registration, lookup, teardown. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitmap.h"
#include "log.h"
#include "region.h"
#include "session.h"
#include "util.h"

void rct_region_free(struct rct_session *s, struct rct_region *r)
{
	if (r->rkey)
		s->ops->rkey_destroy(s->ctx, r->rkey);
	if (r->mem)
		s->ops->mem_unmap(s->ctx, r->mem);
	rct_dmap_free(&r->dirty);
	rct_dmap_free(&r->local);
	rct_dmap_free(&r->cached);
	rct_dmap_free(&r->zeros);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

struct rct_region *rct_session_region(struct rct_session *s, uint32_t id)
{
	for (unsigned i = 0; i < s->nregions; i++)
		if (s->regions[i]->id == id)
			return s->regions[i];
	return NULL;
}

rct_status_t rct_region_set_name(struct rct_region *r, const char *name)
{
	size_t len;

	if (!r || !name)
		return RCT_ERR_INVALID_PARAM;
	len = strlen(name);
	if (!rct_region_name_valid(name, len)) {
		rct_error("region %u: name '%.*s' is not 1..%d bytes of printable ASCII without "
			  "spaces",
			  r->id, RCT_REGION_NAME_MAX, name, RCT_REGION_NAME_MAX);
		return RCT_ERR_INVALID_PARAM;
	}
	if (r->session->state != RCT_SESSION_NEW && r->session->state != RCT_SESSION_LISTENING) {
		rct_error("region %u: named before connect/accept", r->id);
		return RCT_ERR_STATE;
	}
	memcpy(r->name, name, len + 1);
	return RCT_OK;
}

rct_status_t rct_region_set_file(struct rct_region *r, int fd, uint64_t offset)
{
	char path[64];
	struct stat sb;
	int own, seals;

	if (!r || fd < 0)
		return RCT_ERR_INVALID_PARAM;
	if (r->session->state != RCT_SESSION_NEW && r->session->state != RCT_SESSION_LISTENING) {
		rct_error("region %u: its file is given before connect/accept", r->id);
		return RCT_ERR_STATE;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		rct_error("region %u: descriptor %d is not a regular file", r->id, fd);
		return RCT_ERR_INVALID_PARAM;
	}
	if (offset > (uint64_t)sb.st_size || (uint64_t)sb.st_size - offset < r->size) {
		rct_error("region %u: its file has %lld bytes, the region needs %llu from %llu",
			  r->id, (long long)sb.st_size, (unsigned long long)r->size,
			  (unsigned long long)offset);
		return RCT_ERR_INVALID_PARAM;
	}
	/* An open file of its own: SEEK_DATA moves the file offset, which a
	 * dup() would share with the caller. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	own = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0) {
		rct_error("region %u: opening its file again (%s): %m", r->id, path);
		return RCT_ERR_SYSTEM;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = own;
	r->foff = offset;
	/* A file that can shrink can SIGBUS the thread that writes it: only the
	 * caller's thread, which may guard against it, flushes into it. */
	seals = fcntl(fd, F_GET_SEALS);
	r->flush_alone = seals < 0 || !(seals & F_SEAL_SHRINK);
	if (r->flush_alone && r->session->role == RCT_ROLE_SECONDARY && r->session->flush_threads)
		rct_info("region %u: its file is not sealed against shrinking: the caller's "
			 "thread alone flushes it",
			 r->id);
	return RCT_OK;
}

int rct_file_next_data(int fd, uint64_t foff, uint64_t npages, unsigned shift, uint64_t page,
		       uint64_t *first_p, uint64_t *end_p)
{
	off_t a, b, end = (off_t)(foff + (npages << shift));

	if (page >= npages)
		return 0;
	a = lseek(fd, (off_t)(foff + (page << shift)), SEEK_DATA);
	if (a < 0)
		return errno == ENXIO ? 0 : -1;
	if (a >= end)
		return 0;
	b = lseek(fd, a, SEEK_HOLE);
	if (b < 0 || b > end)
		b = end;
	*first_p = RCT_MAX(page, ((uint64_t)a - foff) >> shift);
	*end_p = RCT_MIN(npages, ((uint64_t)b - foff + (1ull << shift) - 1) >> shift);
	return 1;
}

bool rct_region_next_data(struct rct_region *r, uint64_t page, uint64_t *first_p, uint64_t *end_p)
{
	int found;

	if (page >= r->npages)
		return false;
	*first_p = page;
	*end_p = r->npages;
	if (r->fd < 0)
		return true;
	found = rct_file_next_data(r->fd, r->foff, r->npages, r->session->page_shift, page, first_p,
				   end_p);
	if (found < 0) {
		/* Not knowing where the holes are costs reading them, not data. */
		rct_warn("region %u: SEEK_DATA: %m; reading the rest page by page", r->id);
		close(r->fd);
		r->fd = -1;
		*first_p = page;
		*end_p = r->npages;
		return true;
	}
	return found > 0;
}

uint64_t rct_region_pages(const struct rct_region *r)
{
	return r->npages;
}

rct_status_t rct_region_register(struct rct_session *s, uint32_t id, void *addr, size_t size,
				 struct rct_region **region_p)
{
	struct rct_region **regions, *r;
	rct_status_t status;

	if (!s || !addr || !region_p)
		return RCT_ERR_INVALID_PARAM;
	if (s->state != RCT_SESSION_NEW && s->state != RCT_SESSION_LISTENING) {
		rct_error("region %u: regions are registered before connect/accept", id);
		return RCT_ERR_STATE;
	}
	if (!size || size % s->page_size || (uintptr_t)addr % s->page_size) {
		rct_error(
			"region %u: address %p and size %zu must be multiples of the page size %u",
			id, addr, size, s->page_size);
		return RCT_ERR_INVALID_PARAM;
	}
	if (rct_session_region(s, id)) {
		rct_error("region %u: id already registered", id);
		return RCT_ERR_EXISTS;
	}
	if (s->nregions >= RCT_MAX_REGIONS) {
		rct_error("region %u: at most %d regions per session", id, RCT_MAX_REGIONS);
		return RCT_ERR_NO_SPACE;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		return RCT_ERR_NO_MEMORY;
	r->session = s;
	r->fd = -1;
	r->id = id;
	r->ram = addr;
	r->size = size;
	r->npages = size >> s->page_shift;
	r->nwords = rct_bitmap_words(r->npages);
	status = RCT_ERR_NO_MEMORY;
	if (rct_dmap_init(&r->dirty, r->npages) || rct_dmap_init(&r->zeros, r->npages))
		goto out_free;
	if (s->role == RCT_ROLE_SECONDARY) {
		if (rct_dmap_init(&r->local, r->npages) || rct_dmap_init(&r->cached, r->npages))
			goto out_free;
		/* The colo cache: zero and sparse, faulted in as pages arrive; a
		 * guest of a TiB that is mostly holes costs what it holds. */
		status = s->ops->mem_map(s->ctx, NULL, size, RCT_MEM_REMOTE_WRITE | RCT_MEM_SPARSE,
					 &r->mem);
	} else {
		status = s->ops->mem_map(s->ctx, addr, size, RCT_MEM_LOCAL, &r->mem);
	}
	if (status != RCT_OK) {
		rct_error("region %u: mapping %zu bytes with backend %s failed: %s", id, size,
			  s->ops->name, rct_status_str(status));
		/* A local resource failed (fatal range): the session with it. */
		if (rct_status_is_fatal(status))
			status = rct_session_fail(s, status);
		goto out_free;
	}

	regions = realloc(s->regions, (s->nregions + 1) * sizeof(*regions));
	if (!regions) {
		status = RCT_ERR_NO_MEMORY;
		goto out_free;
	}
	s->regions = regions;
	s->regions[s->nregions++] = r;
	*region_p = r;
	return RCT_OK;

out_free:
	rct_region_free(s, r);
	return status;
}
