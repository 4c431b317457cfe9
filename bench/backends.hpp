// The backends under test, one adapter header each, all with the same verbs
// so that a workload is written once: submit (a value through a handle),
// post (fire and forget) and wait_idle. Each adapter is the natural,
// documented way to use its pool; where a pool has no handle type the
// adapter says what stands in. oneTBB and Boost.Asio compile to nothing
// when CMake did not find them.
#pragma once

#include "backends/asio.hpp"
#include "backends/bare_threads.hpp"
#include "backends/mutex_pool.hpp"
#include "backends/taskdist.hpp"
#include "backends/tbb.hpp"
