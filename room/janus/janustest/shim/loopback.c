/*
 * roomcast test shim for Debian's janus (LD_PRELOAD), so that Janus media
 * in the tests runs on 127.0.0.1 only:
 *
 * - getifaddrs(3): Janus gathers ICE host candidates only on interfaces
 *   without IFF_LOOPBACK; this wrapper reports the loopback interface as an
 *   ordinary one, and the generated janus.jcfg restricts ICE to 127.0.0.1
 *   (ice_enforce_list).
 * - recvmsg(2), recvmmsg(2): a datagram from a non-loopback source is
 *   dropped as if lost, so a client checking from another address of the
 *   machine (headless Chromium tries all of its addresses) never becomes a
 *   peer-reflexive candidate: the only working pairs are 127.0.0.1 ones.
 *
 * Built by room/janus/janustest for the tests only; never used by roomcast.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*getifaddrs_fn)(struct ifaddrs **);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);

int getifaddrs(struct ifaddrs **ifap)
{
	static getifaddrs_fn next;
	struct ifaddrs *a;
	int rc;

	if (next == NULL)
		next = (getifaddrs_fn)dlsym(RTLD_NEXT, "getifaddrs");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	rc = next(ifap);
	if (rc != 0)
		return rc;
	for (a = *ifap; a != NULL; a = a->ifa_next)
		if (a->ifa_flags & IFF_LOOPBACK)
			a->ifa_flags &= ~IFF_LOOPBACK;
	return rc;
}

/* foreign reports a datagram source that is an IP address off loopback. */
static int foreign(const struct msghdr *m)
{
	const struct sockaddr *sa = m->msg_name;

	if (sa == NULL || m->msg_namelen < sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = m->msg_name;
		return (ntohl(in->sin_addr.s_addr) >> 24) != 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = m->msg_name;
		const unsigned char *b = in6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 0;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return b[12] != 127;
		return 1;
	}
	return 0;
}

static int datagram(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	static recvmsg_fn next;
	socklen_t namelen = m->msg_namelen;
	size_t controllen = m->msg_controllen;
	ssize_t n;

	if (next == NULL)
		next = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
	if (next == NULL) {
		errno = ENOSYS;
		return -1;
	}
	for (;;) {
		n = next(fd, m, flags);
		if (n < 0 || (flags & MSG_PEEK) || !foreign(m) || !datagram(fd))
			return n;
		/* Dropped: receive the next one (a non-blocking socket says
		 * EAGAIN when there is none). */
		m->msg_namelen = namelen;
		m->msg_controllen = controllen;
		m->msg_flags = 0;
	}
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int vlen, int flags, struct timespec *timeout)
{
	ssize_t n;

	(void)timeout;
	if (vlen == 0)
		return 0;
	/* One message at a time, each through the filter above. */
	n = recvmsg(fd, &v[0].msg_hdr, flags & ~MSG_WAITFORONE);
	if (n < 0)
		return -1;
	v[0].msg_len = (unsigned int)n;
	return 1;
}
