/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a real hypervisor (QEMU COLO) needs of rctd, end to end through
 * librct-client against a real rctd: region names carried to the peer and
 * checked, RAM in files that are not sealed (unsealed memfds, files on
 * /dev/shm) taken and re-checked, huge-page alignment, and a ready epoch the
 * secondary refuses without ending the session; and rctd's SIGBUS guard.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "rctd_fixture.h"
#include "sim.h"

TestSuite(rctd_hv, .init = rctd_start, .fini = rctd_fini, .timeout = 120);

/* A session with region 0 named @name (NULL: unnamed) in @s's memfds. */
static int open_named(struct side *s, enum rct_role role, const char *vm, const char *name)
{
	struct rct_client_session p = {
		.role = role, .backend = "tcp", .name = vm, .lanes = 2, .timeout_ms = 10000};
	struct rct_client_region r = {
		.id = 0, .memfd = s->fd, .size = SIZE, .bitmap_fd = s->bfd, .name = name};
	int rc = rct_client_open(rctd_sock, vm, &s->c);

	if (!rc)
		rc = rct_client_session_open(s->c, &p, NULL);
	if (!rc)
		rc = rct_client_region_register(s->c, &r, NULL);
	return rc;
}

struct connect_job {
	struct side *s;
	uint16_t port;
	int rc;
};

static void *connect_only(void *arg)
{
	struct connect_job *j = arg;

	j->rc = rct_client_connect(j->s->c, "127.0.0.1", j->port, NULL);
	return NULL;
}

Test(rctd_hv, region_names_must_match_and_a_mismatch_names_both)
{
	struct side pri, sec;
	struct connect_job job = {.s = &pri};
	pthread_t t;
	int rc;

	side_init(&pri, 1);
	side_init(&sec, 2);
	cr_assert_eq(open_named(&sec, RCT_ROLE_SECONDARY, "named.s", "mem0"), 0);
	cr_assert_eq(rct_client_listen(sec.c, "127.0.0.1", 0, &job.port), 0);
	cr_assert_eq(open_named(&pri, RCT_ROLE_PRIMARY, "named.p", "pc.ram"), 0);
	cr_assert_eq(pthread_create(&t, NULL, connect_only, &job), 0);
	rc = rct_client_accept(sec.c, NULL);
	pthread_join(t, NULL);
	cr_assert_eq(job.rc, -EBADE, "connect: %s (%s)", strerror(-job.rc),
		     rct_client_error(pri.c));
	cr_assert_eq(rct_client_detail(pri.c), RCT_ERR_MISMATCH, "detail %d: %s",
		     (int)rct_client_detail(pri.c), rct_client_error(pri.c));
	cr_assert(strstr(rct_client_error(pri.c), "'mem0'") &&
			  strstr(rct_client_error(pri.c), "'pc.ram'"),
		  "the mismatch does not name both: %s", rct_client_error(pri.c));
	(void)rc; /* the secondary learns it from the primary's ERROR, or its loss */
	side_fini(&pri);
	side_fini(&sec);
	rctd_alive();

	/* The same names: paired, and a checkpoint applied byte for byte. */
	side_init(&pri, 3);
	side_init(&sec, 4);
	cr_assert_eq(open_named(&sec, RCT_ROLE_SECONDARY, "named2.s", "pc.ram"), 0);
	cr_assert_eq(rct_client_listen(sec.c, "127.0.0.1", 0, &job.port), 0);
	cr_assert_eq(open_named(&pri, RCT_ROLE_PRIMARY, "named2.p", "pc.ram"), 0);
	{
		struct primary_job pj = {.s = &pri, .port = job.port};

		cr_assert_eq(pthread_create(&t, NULL, primary_full_sync, &pj), 0);
		rc = rct_client_accept(sec.c, NULL);
		cr_assert_eq(rc, 0, "accept: %s (%s)", strerror(-rc), rct_client_error(sec.c));
		pthread_join(t, NULL);
		cr_assert_eq(pj.rc, 0, "primary: %s (%s)", strerror(-pj.rc),
			     rct_client_error(pri.c));
	}
	secondary_apply_epoch0(&sec, pri.ram);
	side_fini(&pri);
	side_fini(&sec);
}

/* ------------------------------------------- RAM in files that could shrink */

enum ram_kind {
	RAM_UNSEALED_MEMFD, /* memory-backend-memfd,seal=off */
	RAM_SHM_FILE,	    /* memory-backend-file,mem-path=/dev/shm/...,share=on */
};

/* @s with its guest RAM in a file of @kind named @name (the bitmap as usual). */
static void file_side(struct side *s, enum ram_kind kind, const char *name, uint64_t seed)
{
	char path[128];

	memset(s, 0, sizeof(*s));
	if (kind == RAM_UNSEALED_MEMFD) {
		s->fd = memfd_create(name, MFD_CLOEXEC);
	} else {
		snprintf(path, sizeof(path), "/dev/shm/%s.%d", name, (int)getpid());
		s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		unlink(path); /* the descriptor is the file from here on */
	}
	cr_assert_geq(s->fd, 0, "%s: %s", name, strerror(errno));
	cr_assert_eq(ftruncate(s->fd, SIZE), 0);
	s->ram = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	cr_assert_neq(s->ram, MAP_FAILED);
	s->bits = sim_memfd_map("hv-bits", BITS_LEN, &s->bfd);
	cr_assert_not_null(s->bits);
	for (size_t i = 0; i < SIZE / 8; i++)
		((uint64_t *)s->ram)[i] = sim_rand(&seed);
}

/* The permissions of rctd's mapping of the memfd or file named @name. */
static void rctd_maps(const char *name, char perms[5])
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)rctd_pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	strcpy(perms, "none");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, name)) {
			sscanf(line, "%*s %4s", perms);
			break;
		}
	fclose(f);
}

/* Primary: epoch @e with @n pages changed (every 7th from @first). */
/* In open epoch @e: write @n pages from @first (every 7th), dirty, devstate, commit. */
static int primary_epoch_open(struct side *pri, uint64_t e, unsigned n, unsigned first)
{
	int rc;

	memset(pri->bits, 0, BITS_LEN);
	for (unsigned i = 0; i < n; i++) {
		unsigned page = (first + 7 * i) % (SIZE / PAGE);

		memset(pri->ram + (size_t)page * PAGE, (int)(e * 31 + i), PAGE);
		pri->bits[page / 64] |= 1ull << (page % 64);
	}
	rc = rct_client_ckpt_dirty(pri->c, 0);
	if (!rc)
		rc = rct_client_ckpt_devstate(pri->c, DEV_BLOB, sizeof(DEV_BLOB));
	if (!rc)
		rc = rct_client_ckpt_commit(pri->c, NULL);
	return rc;
}

static int primary_epoch(struct side *pri, uint64_t e, unsigned n, unsigned first)
{
	int rc = rct_client_ckpt_begin(pri->c, e, 0);

	return rc ? rc : primary_epoch_open(pri, e, n, first);
}

/* Secondary: the next event must be READY(@e). */
static void secondary_ready(struct side *sec, uint64_t e)
{
	struct rct_event ev = {0};
	int rc = rct_client_event_next(sec->c, 10000, &ev);

	cr_assert_eq(rc, 0, "no event: %s", strerror(-rc));
	cr_assert_eq(ev.type, RCT_EVENT_CKPT_READY);
	cr_assert_eq(ev.epoch, e);
}

static void unsealed_ram_is_replicated_and_a_shrink_ends_only_its_session(enum ram_kind kind)
{
	struct side pri, sec;
	char perms[5];
	int rc;

	file_side(&pri, kind, "hv-pri-ram", 11);
	file_side(&sec, kind, "hv-sec-ram", 12);
	cr_assert_eq(open_named(&sec, RCT_ROLE_SECONDARY, "file.s", "pc.ram"), 0, "%s",
		     rct_client_error(sec.c));
	cr_assert_eq(open_named(&pri, RCT_ROLE_PRIMARY, "file.p", "pc.ram"), 0, "%s",
		     rct_client_error(pri.c));
	/* Over TCP the primary's guest RAM is mapped read-only, the secondary's to write. */
	rctd_maps("hv-pri-ram", perms);
	cr_assert_str_eq(perms, "r--s", "rctd maps the primary's RAM %s", perms);
	rctd_maps("hv-sec-ram", perms);
	cr_assert_str_eq(perms, "rw-s", "rctd maps the secondary's RAM %s", perms);
	pair_opened(&pri, &sec);
	for (uint64_t e = 1; e <= 3; e++) {
		rc = primary_epoch(&pri, e, 40, (unsigned)e);
		cr_assert_eq(rc, 0, "epoch %llu: %s", (unsigned long long)e,
			     rct_client_error(pri.c));
		secondary_ready(&sec, e);
		cr_assert_eq(rct_client_ckpt_flush(sec.c, e, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL), 0,
			     "%s", rct_client_error(sec.c));
		cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "RAM differs at epoch %llu",
			     (unsigned long long)e);
	}

	/* The secondary's hypervisor shrinks its RAM file: the flush is refused
	 * before rctd touches it, the session ends, rctd lives on. */
	rc = primary_epoch(&pri, 4, 40, 600); /* pages in the half that goes */
	cr_assert_eq(rc, 0, "%s", rct_client_error(pri.c));
	secondary_ready(&sec, 4);
	cr_assert_eq(munmap(sec.ram, SIZE), 0);
	sec.ram = NULL;
	cr_assert_eq(ftruncate(sec.fd, SIZE / 2), 0);
	rc = rct_client_ckpt_flush(sec.c, 4, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL);
	cr_assert_eq(rc, -EIO, "flush: %s", strerror(-rc));
	cr_assert(strstr(rct_client_error(sec.c), "shrank to 2097152 bytes"), "%s",
		  rct_client_error(sec.c));
	cr_assert_eq(rct_client_ckpt_flush(sec.c, 4, 0, NULL), -ENOENT, "the session is gone");
	rctd_alive();
	rct_client_close(pri.c);
	pri.c = NULL;
	side_fini(&pri);
	side_fini(&sec);

	/* The same on the primary: CKPT_BEGIN says so. */
	file_side(&pri, kind, "hv-pri2-ram", 13);
	file_side(&sec, kind, "hv-sec2-ram", 14);
	cr_assert_eq(open_named(&sec, RCT_ROLE_SECONDARY, "file2.s", NULL), 0);
	cr_assert_eq(open_named(&pri, RCT_ROLE_PRIMARY, "file2.p", NULL), 0);
	pair_opened(&pri, &sec);
	cr_assert_eq(ftruncate(pri.fd, 0), 0);
	rc = rct_client_ckpt_begin(pri.c, 1, 0);
	cr_assert_eq(rc, -EIO, "begin: %s", strerror(-rc));
	cr_assert(strstr(rct_client_error(pri.c), "shrank to 0 bytes"), "%s",
		  rct_client_error(pri.c));
	rctd_alive();
	side_fini(&pri);
	side_fini(&sec);
}

Test(rctd_hv, an_unsealed_memfd_is_replicated_and_a_shrink_ends_only_its_session)
{
	unsealed_ram_is_replicated_and_a_shrink_ends_only_its_session(RAM_UNSEALED_MEMFD);
}

Test(rctd_hv, a_shared_file_on_dev_shm_is_replicated_and_a_shrink_ends_only_its_session)
{
	unsealed_ram_is_replicated_and_a_shrink_ends_only_its_session(RAM_SHM_FILE);
}

/* -------------------------------------------------------------- refusing */

Test(rctd_hv, a_refused_epoch_leaves_guest_ram_and_comes_with_the_next_flush)
{
	struct side pri, sec;
	struct rct_event ev = {0};
	uint8_t *before = malloc(SIZE);
	int rc;

	cr_assert_not_null(before);
	pair_up(&pri, &sec, "refuse");
	cr_assert_eq(rct_client_ckpt_refuse(sec.c, 1, "nothing is ready"), -EBUSY);
	cr_assert_eq(primary_epoch(&pri, 1, 60, 3), 0, "%s", rct_client_error(pri.c));
	secondary_ready(&sec, 1);
	memcpy(before, sec.ram, SIZE);
	rc = rct_client_ckpt_refuse(sec.c, 1, "device state would not load: virtio-net");
	cr_assert_eq(rc, 0, "refuse: %s (%s)", strerror(-rc), rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, before, SIZE), 0, "a refused epoch changed guest RAM");
	cr_assert_neq(memcmp(sec.ram, pri.ram, SIZE), 0);
	/* The primary learns it, and goes on. */
	rc = rct_client_event_next(pri.c, 5000, &ev);
	cr_assert_eq(rc, 0, "the primary got no event: %s", strerror(-rc));
	cr_assert_eq(ev.type, RCT_EVENT_CKPT_REFUSED, "event %d", (int)ev.type);
	cr_assert_eq(ev.epoch, 1);
	/* Epoch 2 changes other pages; its flush brings epoch 1's too. */
	cr_assert_eq(primary_epoch(&pri, 2, 60, 5), 0, "%s", rct_client_error(pri.c));
	secondary_ready(&sec, 2);
	cr_assert_eq(rct_client_ckpt_flush(sec.c, 2, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL), 0, "%s",
		     rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "RAM differs after the refused epoch");
	free(before);
	side_fini(&pri);
	side_fini(&sec);
}

/*
 * A bitmap handed over with its summary (RCT_IPC_TAKE_SUMMARY): rctd reads the
 * words the summary names and no other, which is what makes a checkpoint of a
 * TiB guest cost its dirty words.  A page whose word the summary leaves out is
 * not sent (the hypervisor promised that word was zero); the next plain
 * bitmap brings it, and then RAM matches byte for byte.  A region whose
 * bitmap file held no summary refuses the flag and names why.
 */
Test(rctd_hv, a_bitmap_with_its_summary_is_read_only_where_the_summary_says)
{
	const unsigned pages[3] = {5, 3 * 64 + 9, 5 * 64}; /* words 0, 3 and 5 */
	struct rct_ckpt_stats st = {0};
	struct side pri, sec, npri, nsec;
	uint8_t *old = malloc(PAGE);
	int rc;

	cr_assert_not_null(old);
	side_init_summary(&sec, 2);
	side_init_summary(&pri, 1);
	cr_assert_eq(side_open(&sec, RCT_ROLE_SECONDARY, "sum.secondary"), 0);
	cr_assert_eq(side_open(&pri, RCT_ROLE_PRIMARY, "sum.primary"), 0);
	pair_opened(&pri, &sec);
	memcpy(old, sec.ram + (size_t)pages[2] * PAGE, PAGE);
	for (unsigned i = 0; i < 3; i++) {
		memset(pri.ram + (size_t)pages[i] * PAGE, 0xa0 + (int)i, PAGE);
		pri.bits[pages[i] / 64] |= 1ull << (pages[i] % 64);
	}
	pri.sum[0] = 1ull << 0 | 1ull << 3 | 1ull << 7; /* word 7 is zero: a set bit says nothing */
	rc = rct_client_ckpt_begin(pri.c, 1, 0);
	if (!rc)
		rc = rct_client_ckpt_dirty_flags(pri.c, 0, RCT_IPC_TAKE_SUMMARY);
	if (!rc)
		rc = rct_client_ckpt_devstate(pri.c, DEV_BLOB, sizeof(DEV_BLOB));
	if (!rc)
		rc = rct_client_ckpt_commit(pri.c, &st);
	cr_assert_eq(rc, 0, "%s", rct_client_error(pri.c));
	cr_assert_eq(st.pages, 2, "the summary named two dirty words, %llu pages went",
		     (unsigned long long)st.pages);
	secondary_ready(&sec, 1);
	cr_assert_eq(rct_client_ckpt_flush(sec.c, 1, 0, NULL), 0, "%s", rct_client_error(sec.c));
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(memcmp(sec.ram + (size_t)pages[i] * PAGE,
				    pri.ram + (size_t)pages[i] * PAGE, PAGE),
			     0, "page %u", pages[i]);
	cr_assert_eq(memcmp(sec.ram + (size_t)pages[2] * PAGE, old, PAGE), 0,
		     "page %u, in a word the summary left out, was read", pages[2]);
	/* The same bitmap, plain: the whole of it is read. */
	rc = rct_client_ckpt_begin(pri.c, 2, 0);
	if (!rc)
		rc = rct_client_ckpt_dirty(pri.c, 0);
	if (!rc)
		rc = rct_client_ckpt_commit(pri.c, &st);
	cr_assert_eq(rc, 0, "%s", rct_client_error(pri.c));
	cr_assert_eq(st.pages, 3);
	secondary_ready(&sec, 2);
	cr_assert_eq(rct_client_ckpt_flush(sec.c, 2, 0, NULL), 0, "%s", rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "RAM differs after the plain bitmap");

	/* The secondary's own dirty pages through its summary: page 70 (word 1)
	 * is named and restored, page 385 (word 6) is not, until a plain flush. */
	memset(sec.ram + 70 * PAGE, 0x55, PAGE);
	memset(sec.ram + 385 * PAGE, 0x55, PAGE);
	sec.bits[1] = 1ull << (70 % 64);
	sec.bits[6] = 1ull << (385 % 64);
	sec.sum[0] = 1ull << 1;
	cr_assert_eq(primary_epoch(&pri, 3, 10, 200), 0, "%s", rct_client_error(pri.c));
	secondary_ready(&sec, 3);
	rc = rct_client_ckpt_flush(sec.c, 3,
				   RCT_IPC_FLUSH_LOCAL_DIRTY | RCT_IPC_FLUSH_LOCAL_SUMMARY, NULL);
	cr_assert_eq(rc, 0, "%s", rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram + 70 * PAGE, pri.ram + 70 * PAGE, PAGE), 0);
	cr_assert_eq(sec.ram[385 * PAGE], 0x55,
		     "page 385, in a word the summary left out, was read");
	cr_assert_eq(primary_epoch(&pri, 4, 10, 300), 0, "%s", rct_client_error(pri.c));
	secondary_ready(&sec, 4);
	cr_assert_eq(rct_client_ckpt_flush(sec.c, 4, RCT_IPC_FLUSH_LOCAL_DIRTY, NULL), 0, "%s",
		     rct_client_error(sec.c));
	cr_assert_eq(memcmp(sec.ram, pri.ram, SIZE), 0, "RAM differs after the plain flush");

	/* No summary in the file: the flag is refused, the session goes on. */
	pair_up(&npri, &nsec, "nosum");
	cr_assert_eq(rct_client_ckpt_begin(npri.c, 1, 0), 0);
	rc = rct_client_ckpt_dirty_flags(npri.c, 0, RCT_IPC_TAKE_SUMMARY);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(rct_client_error(npri.c), "region 0: dirty with a summary") &&
			  strstr(rct_client_error(npri.c), "held none"),
		  "%s", rct_client_error(npri.c));
	cr_assert_eq(primary_epoch_open(&npri, 1, 60, 3), 0, "%s", rct_client_error(npri.c));
	secondary_ready(&nsec, 1);
	rc = rct_client_ckpt_flush(nsec.c, 1,
				   RCT_IPC_FLUSH_LOCAL_DIRTY | RCT_IPC_FLUSH_LOCAL_SUMMARY, NULL);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(rct_client_error(nsec.c), "region 0: flush with summaries"), "%s",
		  rct_client_error(nsec.c));
	cr_assert_eq(rct_client_ckpt_flush(nsec.c, 1, RCT_IPC_FLUSH_LOCAL_SUMMARY, NULL), -EINVAL);
	cr_assert_eq(rct_client_ckpt_flush(nsec.c, 1, 0, NULL), 0, "%s", rct_client_error(nsec.c));
	cr_assert_eq(memcmp(nsec.ram, npri.ram, SIZE), 0);
	free(old);
	side_fini(&npri);
	side_fini(&nsec);
	side_fini(&pri);
	side_fini(&sec);
}

/* ------------------------------------------------------------- huge pages */

static long hugepages_added;

/* A hugetlbfs memfd of SIZE bytes, mapped; as root, reserves huge pages if none are free. */
static int huge_memfd(void **map_p)
{
	int fd = memfd_create("hv-huge-ram", MFD_CLOEXEC | MFD_HUGETLB);
	void *p = MAP_FAILED;

	if (fd >= 0 && !ftruncate(fd, SIZE))
		p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED && geteuid() == 0 && !hugepages_added) {
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");
		long n = 0;

		if (f && fscanf(f, "%ld", &n) == 1) {
			rewind(f);
			fprintf(f, "%ld\n", n + SIZE / (2 << 20));
			hugepages_added = SIZE / (2 << 20);
		}
		if (f)
			fclose(f);
		if (fd >= 0)
			close(fd);
		return huge_memfd(map_p);
	}
	if (p == MAP_FAILED) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*map_p = p;
	return fd;
}

static void hugepages_release(void)
{
	FILE *f;
	long n = 0;

	if (!hugepages_added)
		return;
	f = fopen("/proc/sys/vm/nr_hugepages", "r+");
	if (f && fscanf(f, "%ld", &n) == 1) {
		rewind(f);
		fprintf(f, "%ld\n", n - hugepages_added);
	}
	if (f)
		fclose(f);
	hugepages_added = 0;
}

Test(rctd_hv, huge_page_ram_is_checked_against_its_real_page_size, .fini = hugepages_release)
{
	struct side pri, sec;
	struct rct_client_session p = {.role = RCT_ROLE_SECONDARY,
				       .backend = "tcp",
				       .name = "huge.s",
				       .timeout_ms = 10000};
	struct rct_client_region r = {.id = 0, .size = SIZE};
	void *huge = NULL;
	int rc;

	side_init(&pri, 21);
	memset(&sec, 0, sizeof(sec));
	sec.fd = huge_memfd(&huge);
	if (sec.fd < 0) {
		rctd_fini();
		cr_skip_test("no huge pages (not root, or none could be reserved): %s",
			     strerror(errno));
	}
	sec.ram = huge;
	sec.bits = sim_memfd_map("hv-bits", BITS_LEN, &sec.bfd);
	cr_assert_not_null(sec.bits);
	cr_assert_eq(rct_client_open(rctd_sock, "huge.s", &sec.c), 0);
	cr_assert_eq(rct_client_session_open(sec.c, &p, NULL), 0);
	r.memfd = sec.fd;
	r.bitmap_fd = sec.bfd;
	/* Aligned to the base page, not to the 2 MiB page of hugetlbfs: refused. */
	r.offset = PAGE;
	r.size = SIZE / 2;
	rc = rct_client_region_register(sec.c, &r, NULL);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(rct_client_error(sec.c), "page size 2097152"), "%s",
		  rct_client_error(sec.c));
	r.offset = 0;
	r.size = SIZE / 2 + PAGE;
	cr_assert_eq(rct_client_region_register(sec.c, &r, NULL), -EINVAL);
	r.size = SIZE;
	rc = rct_client_region_register(sec.c, &r, NULL);
	cr_assert_eq(rc, 0, "%s", rct_client_error(sec.c));
	/* A full checkpoint flushed into huge-page guest RAM, byte for byte. */
	cr_assert_eq(side_open(&pri, RCT_ROLE_PRIMARY, "huge.p"), 0);
	pair_opened(&pri, &sec);
	side_fini(&pri);
	rct_client_close(sec.c);
	munmap(sec.ram, SIZE);
	close(sec.fd);
	sim_memfd_unmap(sec.bits, BITS_LEN, sec.bfd);
}

/* ------------------------------------------------- the SIGBUS guard itself */

struct touch {
	volatile uint8_t *p;
	size_t off;
};

static int touch_byte(void *arg)
{
	struct touch *t = arg;

	return t->p[t->off] + 1;
}

/* conn_regions_check() catches a shrink between steps; a shrink that races
 * with an access raises SIGBUS, which the guard turns into one failed step. */
Test(rctd_hv, sigbus_under_the_guard_ends_the_step_not_the_process)
{
	int fd = memfd_create("hv-guard", MFD_CLOEXEC);
	struct touch t;
	void *addr = NULL;
	uint8_t *p;

	cr_assert_eq(rctd_guard_init(), 0);
	cr_assert_eq(ftruncate(fd, 2 * PAGE), 0);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	p[PAGE] = 41;
	t = (struct touch){.p = p, .off = PAGE};
	cr_assert_eq(rctd_guarded(touch_byte, &t, &addr), 42);
	cr_assert_eq(ftruncate(fd, PAGE), 0);
	cr_assert_eq(rctd_guarded(touch_byte, &t, &addr), RCTD_GUARD_TRIPPED);
	cr_assert_eq(addr, p + PAGE, "fault at %p, expected %p", addr, (void *)(p + PAGE));
	/* The guard is re-armed per step: a good step afterwards runs. */
	t.off = 0;
	cr_assert_eq(rctd_guarded(touch_byte, &t, &addr), 1);
	munmap(p, 2 * PAGE);
	close(fd);
}
