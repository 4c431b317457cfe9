# Catch2: Debian 12 ships 2.13 (single header, no main library); newer
# systems ship v3. tests/catch.hpp includes whichever was found.
include_guard(GLOBAL)
find_package(Catch2 REQUIRED)
if(Catch2_VERSION VERSION_GREATER_EQUAL 3)
    set(TASKDIST_CATCH2_TARGET Catch2::Catch2WithMain)
    set(TASKDIST_CATCH2_DEFINE TASKDIST_CATCH2_V3=1)
else()
    add_library(taskdist_catch_main STATIC ${CMAKE_CURRENT_LIST_DIR}/../tests/catch_main.cpp)
    target_link_libraries(taskdist_catch_main PUBLIC Catch2::Catch2)
    set(TASKDIST_CATCH2_TARGET taskdist_catch_main)
    set(TASKDIST_CATCH2_DEFINE TASKDIST_CATCH2_V3=0)
endif()
