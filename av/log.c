// FFmpeg's log callback for av/log.go: one callback for the process, which
// hands each formatted line to Go with the pointers it can be routed by.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <libavutil/log.h>
#include "_cgo_export.h"

static int rc_log_max = AV_LOG_INFO;

void rc_log_set_max(int level) { __atomic_store_n(&rc_log_max, level, __ATOMIC_RELAXED); }

// The context an AVClass-bearing object logs on behalf of (a codec's
// internal parser logs for its AVCodecContext), from the class's
// parent_log_context_offset.
static void *rc_log_parent(void *ptr) {
	if (!ptr)
		return NULL;
	const AVClass *c = *(const AVClass **)ptr;
	if (!c || c->parent_log_context_offset == 0)
		return NULL;
	return *(void **)((uint8_t *)ptr + c->parent_log_context_offset);
}

static void rc_log_cb(void *ptr, int level, const char *fmt, va_list vl) {
	if (level > __atomic_load_n(&rc_log_max, __ATOMIC_RELAXED))
		return;
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, vl);
	const char *cls = NULL;
	if (ptr && *(const AVClass **)ptr)
		cls = (*(const AVClass **)ptr)->class_name;
	void *p1 = rc_log_parent(ptr);
	rcLogLine(ptr, p1, rc_log_parent(p1), level, buf, (char *)cls);
}

void rc_log_install(void) { av_log_set_callback(rc_log_cb); }
