/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verbs backend end to end on a real RDMA device (soft-RoCE rxe0 in the
 * project's VM: scripts/rxe/vm-run.sh).  The peers use the device's address,
 * RCT_VERBS_ADDR (default 10.77.0.1, the VM's rxe0).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "pair.h"

static const char *addr(void)
{
	const char *a = getenv("RCT_VERBS_ADDR");

	return a ? a : "10.77.0.1";
}

TestSuite(verbs, .timeout = 300);

Test(verbs, e2e_1_qp)
{
	pair_run_e2e("verbs", addr(), 1, 0);
}

Test(verbs, e2e_2_qps)
{
	pair_run_e2e("verbs", addr(), 2, 0);
}

Test(verbs, e2e_4_qps)
{
	pair_run_e2e("verbs", addr(), 4, 0);
}

Test(verbs, e2e_8_qps)
{
	pair_run_e2e("verbs", addr(), 8, 0);
}
