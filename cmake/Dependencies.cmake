# Third-party libraries, and how they are linked.
#
# SUBLEDGER_ROCKSDB_ROOT: a RocksDB built for speed by scripts/rocksdb_release.sh (include/ and
#   lib/librocksdb.a: Debian's source of the installed version, Release, NDEBUG), which
#   scripts/setup.sh passes. Empty (a plain `cmake`, and the sanitizer build): Debian's shared
#   librocksdb, whose assertions are compiled in.
# SUBLEDGER_STATIC_DEPS: link Debian's static archives where they exist (Cap'n Proto, Abseil,
#   OpenSSL, the compression libraries) and spdlog/fmt header-only (Debian ships them shared only),
#   so that a process starts in a few milliseconds instead of resolving ~50 shared objects.
#
# Every target links RocksDB through subledger_rocksdb, spdlog through subledger_spdlog and fmt
# through subledger_fmt.

set(SUBLEDGER_ROCKSDB_ROOT "" CACHE PATH
    "RocksDB built by scripts/rocksdb_release.sh (include/, lib/librocksdb.a); empty: Debian's shared librocksdb")
option(SUBLEDGER_STATIC_DEPS
       "Link Debian's static archives where they exist, and spdlog/fmt header-only" OFF)

find_package(Threads REQUIRED)
if(SUBLEDGER_STATIC_DEPS)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
endif()
find_package(CapnProto REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(absl REQUIRED)

# Points the imported shared-library targets given, and the imported targets they link, at the
# static archive beside each shared object (libfoo.a for libfoo.so.1.2 or libfoo-1.2.so), where
# Debian ships one. Targets without an archive stay shared.
function(subledger_prefer_static_archives)
  set(pending ${ARGN})
  set(seen)
  while(pending)
    list(POP_FRONT pending t)
    if(NOT TARGET ${t} OR t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    get_target_property(deps ${t} INTERFACE_LINK_LIBRARIES)
    if(deps)
      list(APPEND pending ${deps})
    endif()
    get_target_property(imported ${t} IMPORTED)
    get_target_property(type ${t} TYPE)
    if(NOT imported OR NOT type STREQUAL "SHARED_LIBRARY")
      continue()
    endif()
    get_target_property(configs ${t} IMPORTED_CONFIGURATIONS)
    set(suffixes "")
    foreach(c IN LISTS configs)
      string(TOUPPER "_${c}" c)
      list(APPEND suffixes ${c})
    endforeach()
    foreach(suffix IN LISTS suffixes ITEMS "")
      get_target_property(location ${t} IMPORTED_LOCATION${suffix})
      if(NOT location)
        continue()
      endif()
      get_filename_component(dir "${location}" DIRECTORY)
      get_filename_component(file "${location}" NAME)
      string(REGEX REPLACE "(-[0-9.]+)?\\.so.*$" ".a" archive "${file}")
      if(EXISTS "${dir}/${archive}")
        set_target_properties(${t} PROPERTIES IMPORTED_LOCATION${suffix} "${dir}/${archive}"
                                              IMPORTED_SONAME${suffix} "")
      endif()
    endforeach()
  endwhile()
endfunction()

# A library for the whole link: the static archive when linking statically, else the shared one.
function(subledger_find_system_library var name)
  if(SUBLEDGER_STATIC_DEPS)
    find_library(${var} NAMES lib${name}.a ${name} REQUIRED)
  else()
    find_library(${var} NAMES ${name} REQUIRED)
  endif()
endfunction()

if(SUBLEDGER_STATIC_DEPS)
  subledger_prefer_static_archives(CapnProto::capnp CapnProto::kj
    absl::flat_hash_map absl::hash absl::status absl::statusor absl::synchronization)
endif()

add_library(subledger_rocksdb INTERFACE)
if(SUBLEDGER_ROCKSDB_ROOT)
  if(NOT EXISTS "${SUBLEDGER_ROCKSDB_ROOT}/lib/librocksdb.a"
     OR NOT EXISTS "${SUBLEDGER_ROCKSDB_ROOT}/include/rocksdb/db.h")
    message(FATAL_ERROR "SUBLEDGER_ROCKSDB_ROOT=${SUBLEDGER_ROCKSDB_ROOT} has no lib/librocksdb.a and "
                        "include/rocksdb/: give the directory scripts/rocksdb_release.sh prints, or "
                        "leave it empty for Debian's shared librocksdb")
  endif()
  add_library(subledger_rocksdb_release STATIC IMPORTED)
  set_target_properties(subledger_rocksdb_release PROPERTIES
    IMPORTED_LOCATION "${SUBLEDGER_ROCKSDB_ROOT}/lib/librocksdb.a"
    INTERFACE_INCLUDE_DIRECTORIES "${SUBLEDGER_ROCKSDB_ROOT}/include")
  # The compression libraries Debian's package (and so the build script) enables.
  set(rocksdb_deps)
  foreach(name snappy lz4 zstd z bz2)
    subledger_find_system_library(SUBLEDGER_LIB_${name} ${name})
    list(APPEND rocksdb_deps ${SUBLEDGER_LIB_${name}})
  endforeach()
  target_link_libraries(subledger_rocksdb INTERFACE
    subledger_rocksdb_release ${rocksdb_deps} Threads::Threads ${CMAKE_DL_LIBS})
  message(STATUS "RocksDB: static, ${SUBLEDGER_ROCKSDB_ROOT}/lib/librocksdb.a")
else()
  find_package(RocksDB REQUIRED)
  target_link_libraries(subledger_rocksdb INTERFACE RocksDB::rocksdb-shared)
  message(STATUS "RocksDB: Debian's shared librocksdb")
endif()

add_library(subledger_spdlog INTERFACE)
if(SUBLEDGER_STATIC_DEPS)
  # spdlog and fmt compiled into the three files that log (Debian ships no archive of either).
  get_target_property(spdlog_includes spdlog::spdlog_header_only INTERFACE_INCLUDE_DIRECTORIES)
  target_include_directories(subledger_spdlog SYSTEM INTERFACE ${spdlog_includes})
  target_compile_definitions(subledger_spdlog INTERFACE SPDLOG_FMT_EXTERNAL)
  target_link_libraries(subledger_spdlog INTERFACE fmt::fmt-header-only Threads::Threads)
else()
  target_link_libraries(subledger_spdlog INTERFACE spdlog::spdlog)
endif()

add_library(subledger_fmt INTERFACE)
if(SUBLEDGER_STATIC_DEPS)
  target_link_libraries(subledger_fmt INTERFACE fmt::fmt-header-only)
else()
  target_link_libraries(subledger_fmt INTERFACE fmt::fmt)
endif()

# The allocator of the executables. With SUBLEDGER_STATIC_DEPS, gperftools' tcmalloc_minimal
# (Debian's static archive, libgoogle-perftools-dev) replaces glibc's malloc: malloc and free were
# about 18% of the server's CPU under saturated writes and 10% of apply's. Measured on this
# machine, three alternating runs each: serve's saturated writes +19% (median 10,938/s against
# 9,192/s), apply of a 48k-command file about 8% less wall. (jemalloc gained nothing on the
# server.) Without the archive, or in the sanitizer build, glibc's malloc stays.
add_library(subledger_malloc INTERFACE)
# (SUBLEDGER_FUZZ turns SUBLEDGER_SANITIZE on after this file is read: both are checked.)
if(SUBLEDGER_STATIC_DEPS AND NOT SUBLEDGER_SANITIZE AND NOT SUBLEDGER_FUZZ)
  find_library(SUBLEDGER_TCMALLOC NAMES libtcmalloc_minimal.a)
  if(SUBLEDGER_TCMALLOC)
    target_link_libraries(subledger_malloc INTERFACE ${SUBLEDGER_TCMALLOC} Threads::Threads)
    # ... in subledger-bulk, which runs the commands that fold the whole ledger; `subledger`, the
    # query processes, keeps glibc's, which starts 11 ms sooner (app/CMakeLists.txt).
    set(SUBLEDGER_BULK_BINARY ON)
    message(STATUS "malloc: ${SUBLEDGER_TCMALLOC} (subledger-bulk)")
  else()
    message(STATUS "malloc: glibc's (no libtcmalloc_minimal.a: install libgoogle-perftools-dev)")
  endif()
endif()
