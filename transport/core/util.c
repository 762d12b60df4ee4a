/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *rct_mem_alloc(size_t len)
{
	void *addr;

	addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED) {
		rct_error("mmap of %zu bytes: %m", len);
		return NULL;
	}
	/* Pre-fault: first-touch faults and zeroing cost ~5 ms per MB on these
	 * machines, and must not land on a checkpoint's critical path. */
	if (madvise(addr, len, MADV_POPULATE_WRITE))
		memset(addr, 0, len);
	return addr;
}

void *rct_mem_alloc_sparse(size_t len)
{
	void *addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (addr == MAP_FAILED) {
		rct_error("mmap of %zu bytes (not populated): %m", len);
		return NULL;
	}
	return addr;
}

bool rct_mem_is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;

	/* Eight words per step; a page of data usually fails on the first. */
	for (size_t i = 0; i < len / 8; i += 8) {
		uint64_t any = 0;

		for (unsigned k = 0; k < 8; k++)
			any |= w[i + k];
		if (any)
			return false;
	}
	return true;
}

void rct_mem_free(void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}

uint64_t rct_random64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = rct_now_ns() ^ (uint64_t)getpid() << 32;
	return v;
}
