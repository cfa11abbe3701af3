/*
 * roomcast test shim for Debian's janus (LD_PRELOAD): Janus gathers ICE
 * host candidates only on interfaces without IFF_LOOPBACK, so the tests
 * could not keep its media on 127.0.0.1. This wrapper of getifaddrs(3)
 * reports the loopback interface as an ordinary interface; the generated
 * janus.jcfg then restricts ICE to 127.0.0.1 (ice_enforce_list). Built by
 * room/janus/janustest for the tests only; never used by roomcast itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

typedef int (*getifaddrs_fn)(struct ifaddrs **);

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
