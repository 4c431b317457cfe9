// taskdist: the memory taskdist keeps for reuse.
#pragma once

#include <cstddef>

#include "detail/block_cache.hpp"

namespace taskdist {

/// Task states (one per submit(), and per post() with per-task options)
/// live in blocks that taskdist recycles instead of returning them to the
/// allocator: each thread keeps up to 256 per size class, and a
/// process-wide cache takes the surplus and returns a batch to the system
/// once it has gone unused for a second. This hands the process-wide
/// cache, and the calling thread's own blocks, back at once: after a burst,
/// say, when the memory is wanted elsewhere and no burst follows soon.
/// Thread-safe.
inline void release_cached_memory() noexcept { detail::BlockCache::release_all(); }

/// Bytes of task-state blocks in the process-wide cache (not those each
/// thread keeps for itself). Thread-safe; a snapshot.
inline std::size_t cached_memory_bytes() noexcept { return detail::BlockCache::depot_bytes(); }

} // namespace taskdist
