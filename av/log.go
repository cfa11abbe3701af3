package av

/*
#include <libavutil/log.h>
void rc_log_set_max(int level);
void rc_log_install(void);
*/
import "C"

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"
)

// FFmpeg has one log callback per process. It is installed once, and each
// line is routed by the context it was logged for (a codec, format or
// scaler context) to the logger of the component that owns that context:
// every FFmpeg object roomcast allocates is registered with its owner's
// logger when it is created and unregistered when it is freed. Lines for
// other contexts (or none) go to the process logger set with
// RouteFFmpegLogs, if any. So several sessions in one process each get
// their own FFmpeg lines.
//
// FFmpeg's own messages are per-packet or per-probe noise (av turns what
// matters into errors): an owner's lines are logged only when its logger is
// at debug level or lower, FFmpeg's errors and warnings as warnings.

type logOwner struct {
	log zerolog.Logger
	// debugOnly: a component's lines show only when its logger is at
	// debug level (the fallback filters by its own level).
	debugOnly bool
	mu        sync.Mutex
	partial   strings.Builder // FFmpeg may emit one line in several calls
}

var ffLog = struct {
	once     sync.Once
	mu       sync.RWMutex
	owners   map[uintptr]*logOwner
	fallback *logOwner
}{owners: map[uintptr]*logOwner{}}

func installLogCallback() {
	ffLog.once.Do(func() {
		C.rc_log_set_max(C.AV_LOG_INFO)
		C.rc_log_install()
	})
}

// RouteFFmpegLogs installs the routing callback and sends FFmpeg lines that
// belong to no registered owner to log (field component=ffmpeg), at level or
// more severe; zerolog.Disabled drops them. It is the process's fallback:
// main calls it once; components register their own contexts.
func RouteFFmpegLogs(log zerolog.Logger, level zerolog.Level) {
	installLogCallback()
	var fb *logOwner
	if level < zerolog.Disabled && level != zerolog.NoLevel {
		fb = &logOwner{log: log.Level(max(level, log.GetLevel())).With().Str("component", "ffmpeg").Logger()}
	}
	ffLog.mu.Lock()
	ffLog.fallback = fb
	ffLog.mu.Unlock()
}

// RegisterLogContext routes FFmpeg's lines for the context at ptr (an
// AVCodecContext, AVFormatContext, AVIOContext, SwsContext…) to log until
// the returned function is called (before the context is freed). For
// packages that allocate FFmpeg objects themselves (mp4).
func RegisterLogContext(p unsafe.Pointer, log zerolog.Logger) (unregister func()) {
	return registerLog(uintptr(p), log)
}

// RegisterLogClasser is RegisterLogContext for go-astiav objects that do not
// expose their C pointer (FormatContext; an IOContext opened by FFmpeg):
// the pointer is read from the object's AVClass description. The object
// must have an AVClass: a custom AVIOContext (AllocIOContext) has none.
func RegisterLogClasser(c astiav.Classer, log zerolog.Logger) (unregister func()) {
	if c == nil || c.Class() == nil {
		return func() {}
	}
	// Class.String is "item [class] @ 0x…", the context's address.
	s := c.Class().String()
	i := strings.LastIndex(s, "@ ")
	if i < 0 {
		return func() {}
	}
	p, err := strconv.ParseUint(strings.TrimSpace(s[i+2:]), 0, 64)
	if err != nil {
		return func() {}
	}
	return registerLog(uintptr(p), log)
}

func registerLog(ptr uintptr, log zerolog.Logger) func() {
	if ptr == 0 {
		return func() {}
	}
	installLogCallback()
	o := &logOwner{log: log.With().Str("component", "ffmpeg").Logger(), debugOnly: true}
	ffLog.mu.Lock()
	ffLog.owners[ptr] = o
	ffLog.mu.Unlock()
	return func() {
		ffLog.mu.Lock()
		if ffLog.owners[ptr] == o {
			delete(ffLog.owners, ptr)
		}
		ffLog.mu.Unlock()
	}
}

//export rcLogLine
func rcLogLine(ptr, parent, grandparent unsafe.Pointer, level C.int, msg, class *C.char) {
	ffLog.mu.RLock()
	o := ffLog.owners[uintptr(ptr)]
	if o == nil && parent != nil {
		o = ffLog.owners[uintptr(parent)]
	}
	if o == nil && grandparent != nil {
		o = ffLog.owners[uintptr(grandparent)]
	}
	if o == nil {
		o = ffLog.fallback
	}
	ffLog.mu.RUnlock()
	if o == nil || (o.debugOnly && o.log.GetLevel() > zerolog.DebugLevel) {
		return
	}
	s := C.GoString(msg)
	o.mu.Lock()
	o.partial.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		o.mu.Unlock()
		return
	}
	line := strings.TrimSpace(o.partial.String())
	o.partial.Reset()
	o.mu.Unlock()
	if line == "" {
		return
	}
	var ev *zerolog.Event
	switch {
	case level <= C.AV_LOG_WARNING:
		ev = o.log.Warn()
	case level <= C.AV_LOG_INFO:
		ev = o.log.Info()
	default:
		ev = o.log.Debug()
	}
	if class != nil {
		ev = ev.Str("class", C.GoString(class))
	}
	ev.Msg(line)
}

// Option configures an av component at creation.
type Option func(*options)

type options struct {
	log    zerolog.Logger
	hasLog bool
}

// WithLog routes the FFmpeg lines of the component's contexts to l (at
// debug level; see RouteFFmpegLogs). Without it they go to the process
// logger.
func WithLog(l zerolog.Logger) Option { return func(o *options) { o.log, o.hasLog = l, true } }

// logOption is WithLog(l) unless l is the zero Logger.
func logOption(l zerolog.Logger) options {
	if reflect.ValueOf(l).IsZero() {
		return options{}
	}
	return options{log: l, hasLog: true}
}

// register routes ptr's lines to o's logger, if it has one.
func (o options) register(ptr unsafe.Pointer) func() {
	if !o.hasLog {
		return func() {}
	}
	return RegisterLogContext(ptr, o.log)
}

func applyOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (o options) registerClasser(c astiav.Classer) func() {
	if !o.hasLog {
		return func() {}
	}
	return RegisterLogClasser(c, o.log)
}
