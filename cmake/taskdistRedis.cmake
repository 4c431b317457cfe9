# taskdist::redis: the scale-out part, for consumers that want it. Needs
# hiredis, found with pkg-config (Debian: libhiredis-dev, pkg-config). The
# core target never depends on it.
include_guard(GLOBAL)

macro(taskdist_find_redis)
    if(NOT TARGET taskdist::hiredis)
        find_package(PkgConfig QUIET)
        if(PKG_CONFIG_FOUND)
            pkg_check_modules(TASKDIST_HIREDIS QUIET IMPORTED_TARGET GLOBAL hiredis)
        endif()
        if(TARGET PkgConfig::TASKDIST_HIREDIS)
            add_library(taskdist::hiredis ALIAS PkgConfig::TASKDIST_HIREDIS)
        endif()
    endif()
endmacro()
