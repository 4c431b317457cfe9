// taskdist: the version, defined once; CMake reads it from here.
#pragma once

#define TASKDIST_VERSION_MAJOR 0
#define TASKDIST_VERSION_MINOR 1
#define TASKDIST_VERSION_PATCH 0
#define TASKDIST_VERSION_STRING "0.1.0"

namespace taskdist {
inline constexpr int version_major = TASKDIST_VERSION_MAJOR;
inline constexpr int version_minor = TASKDIST_VERSION_MINOR;
inline constexpr int version_patch = TASKDIST_VERSION_PATCH;
} // namespace taskdist
