/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The session's descriptor for its caller's event loop: an epoll set that
 * holds what the backend would wait on inside rct_session_progress(), kept
 * in step with the backend at every rct_session_arm() (a backend's set
 * changes: lanes open, a tcp lane wants POLLOUT while its queue drains).
 * Level-triggered, so nothing that is ready when the caller goes to sleep is
 * missed; the backend's arm() re-arms what is edge-like underneath (CQ
 * notifications, ucp_worker_arm()).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "keepalive.h"
#include "log.h"
#include "session.h"

int rct_session_fd(struct rct_session *s)
{
	if (!s) {
		errno = EINVAL;
		return -1;
	}
	if (s->wait.epfd < 0) {
		s->wait.epfd = epoll_create1(EPOLL_CLOEXEC);
		if (s->wait.epfd < 0)
			rct_error("session: epoll_create1 for the session's descriptor: %m");
	}
	return s->wait.epfd;
}

static uint32_t rct_wait_events(short events)
{
	return (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0);
}

/* Make the epoll set hold exactly @fds (their fds and events). */
static rct_status_t rct_wait_sync(struct rct_session *s, const struct pollfd *fds, unsigned n)
{
	struct rct_session_wait *w = &s->wait;

	unsigned i = 0;

	while (i < w->n) { /* drop what is gone or waits for other events */
		unsigned j = 0;

		while (j < n && fds[j].fd != w->fds[i].fd)
			j++;
		if (j < n && fds[j].events == w->fds[i].events) {
			i++;
			continue;
		}
		if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->fds[i].fd, NULL) && errno != ENOENT &&
		    errno != EBADF) {
			rct_error("session: epoll_ctl DEL of fd %d: %m", w->fds[i].fd);
			return RCT_ERR_SYSTEM;
		}
		w->fds[i] = w->fds[--w->n];
	}
	for (unsigned j = 0; j < n; j++) { /* new, or re-added with new events */
		struct epoll_event ev = {.events = rct_wait_events(fds[j].events),
					 .data.fd = fds[j].fd};

		for (i = 0; i < w->n && w->fds[i].fd != fds[j].fd;)
			i++;
		if (i < w->n || fds[j].fd < 0)
			continue;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fds[j].fd, &ev)) {
			rct_error("session: epoll_ctl ADD of fd %d: %m", fds[j].fd);
			return RCT_ERR_SYSTEM;
		}
		w->fds[w->n++] = fds[j];
	}
	return RCT_OK;
}

rct_status_t rct_session_arm(struct rct_session *s, int *timeout_ms_p)
{
	struct pollfd fds[RCT_WAIT_FDS];
	unsigned n = 0;
	rct_status_t status;

	if (!s || !timeout_ms_p)
		return RCT_ERR_INVALID_PARAM;
	if (s->state == RCT_SESSION_FAILED)
		return s->fail_status;
	if (s->state != RCT_SESSION_CONNECTED)
		return RCT_ERR_STATE;
	if (!s->ops->arm)
		return RCT_ERR_UNSUPPORTED;
	if (rct_session_fd(s) < 0)
		return RCT_ERR_SYSTEM;
	if (s->ev_count)
		return RCT_ERR_AGAIN; /* an event the caller has not read yet */
	/* A heartbeat that is due goes out now, not after the sleep. */
	status = rct_session_tick(s);
	if (status != RCT_OK)
		return status;
	status = s->ops->arm(s->ctx, fds, RCT_WAIT_FDS, &n);
	if (status != RCT_OK)
		return rct_status_is_fatal(status) ? rct_session_fail(s, status) : status;
	status = rct_wait_sync(s, fds, n);
	if (status != RCT_OK)
		return rct_session_fail(s, status);
	*timeout_ms_p = rct_session_hb_ms(s, -1);
	return RCT_OK;
}
