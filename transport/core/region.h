/* SPDX-License-Identifier: BSD-3-Clause */
/* region.c: the guest regions of a session. */
#ifndef RCT_REGION_H
#define RCT_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Find a region by id, or NULL. */
struct rct_region *rct_session_region(struct rct_session *s, uint32_t id);

/* Unmap, drop the key and free @r (teardown). */
void rct_region_free(struct rct_session *s, struct rct_region *r);

/*
 * The next pages at or after @page that may hold data, [*first_p, *end_p):
 * the file's data (SEEK_DATA/SEEK_HOLE) when the region has one, else all
 * the rest.  False when nothing from @page on can hold data.
 */
bool rct_region_next_data(struct rct_region *r, uint64_t page, uint64_t *first_p, uint64_t *end_p);

/*
 * The same over pages [0, @npages) of @fd from byte @foff, 2^@shift bytes a
 * page: 1 and [*first_p, *end_p) found, 0 no data from @page on, -1 lseek
 * failed (errno).  Never closes @fd: threads beside the session use it.
 */
int rct_file_next_data(int fd, uint64_t foff, uint64_t npages, unsigned shift, uint64_t page,
		       uint64_t *first_p, uint64_t *end_p);

#endif /* RCT_REGION_H */
