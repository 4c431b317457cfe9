# An overlay port: builds taskdist from the checkout it sits in, so that
#   vcpkg install taskdist --overlay-ports=<taskdist>/ports
# installs exactly the tree you have. A port for a registry would fetch a
# release archive instead (vcpkg_from_github with a REF and its SHA512).
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

# Header-only: one configuration is enough.
set(VCPKG_BUILD_TYPE release)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DTASKDIST_BUILD_TESTS=OFF
        -DTASKDIST_BUILD_EXAMPLES=OFF
        -DTASKDIST_BUILD_BENCHMARKS=OFF
        -DTASKDIST_INSTALL=ON
)
vcpkg_cmake_install()

# Our install puts the package config in share/cmake/taskdist; vcpkg wants share/taskdist.
vcpkg_cmake_config_fixup(PACKAGE_NAME taskdist CONFIG_PATH share/cmake/taskdist)
vcpkg_fixup_pkgconfig()

# Nothing is compiled: no lib/ or debug/ trees should remain.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
