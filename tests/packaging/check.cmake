# Packaging checks, one per CTest test: cmake -DSTEP=<step> -DSOURCE=<taskdist
# source> -DWORK=<scratch dir> -DCXX=<compiler> -DVERSION=<x.y.z> -P check.cmake
#
#   subdirectory | fetchcontent   build and run the consumer against the source tree
#   install                       configure taskdist alone and install it into WORK/prefix
#   find_package                  the consumer against WORK/prefix
#   pkgconfig                     compile the consumer with pkg-config flags from WORK/prefix only
#   vcpkg_port                    what can be checked of ports/taskdist without vcpkg
cmake_minimum_required(VERSION 3.21)

foreach(var STEP SOURCE WORK CXX VERSION)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check.cmake: -D${var}=... is required")
    endif()
endforeach()
set(prefix "${WORK}/prefix")

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
    set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(consumer mode)
    set(dir "${WORK}/consumer-${mode}")
    file(REMOVE_RECURSE "${dir}")
    run(${CMAKE_COMMAND} -S "${SOURCE}/tests/packaging/consumer" -B "${dir}" -DCMAKE_CXX_COMPILER=${CXX}
        -DMODE=${mode} -DTASKDIST_SOURCE_DIR=${SOURCE} -DEXPECTED_VERSION=${VERSION} -DCMAKE_PREFIX_PATH=${prefix})
    run(${CMAKE_COMMAND} --build "${dir}")
    run("${dir}/consumer")
    message(STATUS "${mode}: ${last_output}")
endfunction()

function(require_file path)
    if(NOT EXISTS "${path}")
        message(FATAL_ERROR "expected ${path}")
    endif()
endfunction()

if(STEP STREQUAL "subdirectory" OR STEP STREQUAL "fetchcontent" OR STEP STREQUAL "find_package")
    consumer(${STEP})

elseif(STEP STREQUAL "install")
    file(REMOVE_RECURSE "${WORK}/build" "${prefix}")
    # As a package manager would: nothing but the library.
    run(${CMAKE_COMMAND} -S "${SOURCE}" -B "${WORK}/build" -DCMAKE_CXX_COMPILER=${CXX}
        -DCMAKE_INSTALL_PREFIX=${prefix} -DTASKDIST_BUILD_TESTS=OFF -DTASKDIST_BUILD_EXAMPLES=OFF
        -DTASKDIST_BUILD_BENCHMARKS=OFF -DTASKDIST_INSTALL=ON)
    run(${CMAKE_COMMAND} --install "${WORK}/build")
    require_file("${prefix}/include/taskdist/taskdist.hpp")
    require_file("${prefix}/share/cmake/taskdist/taskdistConfig.cmake")
    require_file("${prefix}/share/cmake/taskdist/taskdistConfigVersion.cmake")
    require_file("${prefix}/share/pkgconfig/taskdist.pc")

elseif(STEP STREQUAL "pkgconfig")
    find_program(PKG_CONFIG pkg-config REQUIRED)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
    run(${PKG_CONFIG} --modversion taskdist)
    string(STRIP "${last_output}" pc_version)
    if(NOT pc_version STREQUAL VERSION)
        message(FATAL_ERROR "pkg-config says taskdist ${pc_version}, expected ${VERSION}")
    endif()
    run(${PKG_CONFIG} --cflags --libs taskdist)
    string(STRIP "${last_output}" flags)
    separate_arguments(flags UNIX_COMMAND "${flags}")
    # Only the flags pkg-config gave, nothing from CMake.
    run(${CXX} -std=c++20 "-DTASKDIST_EXPECTED_VERSION=\"${VERSION}\"" "${SOURCE}/tests/packaging/consumer/main.cpp"
        ${flags} -o "${WORK}/consumer-pkgconfig")
    run("${WORK}/consumer-pkgconfig")
    message(STATUS "pkgconfig (${flags}): ${last_output}")

elseif(STEP STREQUAL "vcpkg_port")
    set(port "${SOURCE}/ports/taskdist")
    # vcpkg.json: valid JSON, our name and version, the dependencies the port promises.
    file(READ "${port}/vcpkg.json" manifest)
    string(JSON name GET "${manifest}" name)
    string(JSON port_version GET "${manifest}" version)
    if(NOT name STREQUAL "taskdist" OR NOT port_version STREQUAL VERSION)
        message(FATAL_ERROR "vcpkg.json names ${name} ${port_version}, expected taskdist ${VERSION}")
    endif()
    string(JSON deps GET "${manifest}" dependencies)
    if(NOT deps MATCHES "\"concurrentqueue\"")
        message(FATAL_ERROR "vcpkg.json must depend on concurrentqueue: ${deps}")
    endif()
    string(JSON fmt_deps GET "${manifest}" features fmt dependencies)
    if(NOT fmt_deps MATCHES "\"fmt\"")
        message(FATAL_ERROR "vcpkg.json's fmt feature must depend on fmt: ${fmt_deps}")
    endif()
    # portfile.cmake: every -D<OPTION> it passes is an option of ours.
    file(READ "${port}/portfile.cmake" portfile)
    file(READ "${SOURCE}/CMakeLists.txt" lists)
    string(REGEX MATCHALL "-D(TASKDIST_[A-Z_]+)=" passed "${portfile}")
    if(NOT passed)
        message(FATAL_ERROR "portfile.cmake passes no TASKDIST_ options")
    endif()
    foreach(p IN LISTS passed)
        string(REGEX REPLACE "^-D|=$" "" opt "${p}")
        if(NOT lists MATCHES "option\\(${opt} ")
            message(FATAL_ERROR "portfile.cmake passes -D${opt}, which CMakeLists.txt does not define")
        endif()
    endforeach()
    # The layout the portfile fixes up is the one our install makes.
    string(REGEX MATCH "CONFIG_PATH ([^ )\n]+)" _ "${portfile}")
    require_file("${prefix}/${CMAKE_MATCH_1}/taskdistConfig.cmake")
    require_file("${port}/usage")
    file(READ "${port}/usage" usage)
    if(NOT usage MATCHES "find_package\\(taskdist CONFIG REQUIRED\\)" OR NOT usage MATCHES "taskdist::taskdist")
        message(FATAL_ERROR "ports/taskdist/usage must show find_package(taskdist CONFIG REQUIRED) and taskdist::taskdist")
    endif()
    message(STATUS "vcpkg port: manifest, ${CMAKE_MATCH_1} and options consistent")

else()
    message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
