# Finds what taskdist's headers need, for the build tree and for an installed
# taskdistConfig.cmake alike: threads, and moodycamel::ConcurrentQueue, which
# lives in different places depending on who installed it.
#
# Defines the imported target taskdist::concurrentqueue.
include_guard(GLOBAL)

macro(taskdist_find_dependencies)
    set(THREADS_PREFER_PTHREAD_FLAG ON)
    find_package(Threads REQUIRED)

    if(NOT TARGET taskdist::concurrentqueue)
        add_library(taskdist::concurrentqueue INTERFACE IMPORTED GLOBAL)
        # Upstream's install and vcpkg ship a CMake package.
        find_package(concurrentqueue CONFIG QUIET)
        if(TARGET concurrentqueue::concurrentqueue)
            set_property(TARGET taskdist::concurrentqueue PROPERTY
                INTERFACE_LINK_LIBRARIES concurrentqueue::concurrentqueue)
        else()
            # Debian: <concurrentqueue/concurrentqueue.h>; upstream/vcpkg
            # layouts: <moodycamel/concurrentqueue.h>; a source tree:
            # <concurrentqueue.h>. include/taskdist/detail/concurrentqueue.hpp
            # picks among them with __has_include.
            find_path(TASKDIST_CONCURRENTQUEUE_INCLUDE_DIR
                NAMES concurrentqueue/concurrentqueue.h moodycamel/concurrentqueue.h concurrentqueue.h
                DOC "Directory holding moodycamel's concurrentqueue.h (or its concurrentqueue/ or moodycamel/ folder)")
            if(NOT TASKDIST_CONCURRENTQUEUE_INCLUDE_DIR)
                message(FATAL_ERROR "taskdist needs moodycamel::ConcurrentQueue: install libconcurrentqueue-dev "
                                    "(Debian) or concurrentqueue (vcpkg), or set TASKDIST_CONCURRENTQUEUE_INCLUDE_DIR")
            endif()
            set_property(TARGET taskdist::concurrentqueue PROPERTY
                INTERFACE_INCLUDE_DIRECTORIES "${TASKDIST_CONCURRENTQUEUE_INCLUDE_DIR}")
        endif()
    endif()
endmacro()
