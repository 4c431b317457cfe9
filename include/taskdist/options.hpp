// taskdist: the settings of a pool and of one submission.
//
// Plain aggregates with a default for every field, so designated
// initializers that name a subset ({.workers = 4}) compile cleanly under
// -Wextra. New fields are only ever appended.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace taskdist {

/// The default hardware concurrency, at least 1.
inline unsigned default_worker_count() noexcept { return std::max(1u, std::thread::hardware_concurrency()); }

/// Settings of one pool; read once, by the pool's constructor.
struct PoolOptions {
    /// Number of worker threads. 0 is rejected with std::invalid_argument.
    std::size_t workers = default_worker_count();
    /// Thread-name prefix; workers are named "<name>-<index>" (cut to 15 bytes on Linux).
    std::string name = "taskdist";
    /// Receives the exception of a post()ed task that threw, on the worker
    /// that ran it. Empty means: print one line to stderr. Exceptions thrown by
    /// on_error itself are caught and printed, never propagated.
    std::function<void(std::exception_ptr)> on_error = {};
};

/// Settings of one submit()/post(). Distributors read what they need.
struct SubmitOptions {
    /// Higher runs first under taskdist::Priority; ignored by other distributors.
    int priority = 0;
    /// Affinity key: under taskdist::Sticky, equal keys run on the same worker.
    std::optional<std::uint64_t> key = std::nullopt;
};

} // namespace taskdist
