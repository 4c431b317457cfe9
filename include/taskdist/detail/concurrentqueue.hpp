// taskdist: the one place that knows where moodycamel::ConcurrentQueue lives.
//
// Its include path differs by layout: Debian ships
// <concurrentqueue/concurrentqueue.h>, upstream installs and vcpkg use
// <moodycamel/concurrentqueue.h>, and its own source tree has
// <concurrentqueue.h>. No other taskdist header includes it directly.
#pragma once

#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>
#elif __has_include(<moodycamel/concurrentqueue.h>)
#include <moodycamel/concurrentqueue.h>
#elif __has_include(<concurrentqueue.h>)
#include <concurrentqueue.h>
#else
#error "taskdist needs moodycamel::ConcurrentQueue (Debian: libconcurrentqueue-dev; vcpkg: concurrentqueue)"
#endif
