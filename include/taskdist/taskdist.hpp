// taskdist: the umbrella header. Include this, or only the parts you use.
#pragma once

#include "distributor.hpp"
#include "distributors/least_busy.hpp"
#include "distributors/priority.hpp"
#include "distributors/round_robin.hpp"
#include "distributors/shared_queue.hpp"
#include "distributors/sticky.hpp"
#include "errors.hpp"
#include "observer.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "task_context.hpp"
#include "task_group.hpp"
#include "task_handle.hpp"
#include "thread_pool.hpp"
#include "version.hpp"
#include "worker_pool.hpp"
