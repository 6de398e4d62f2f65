# Installs the build tree to a staging prefix, then builds and runs examples/cmake-consumer
# against it with find_package(rp), a program built from `pkg-config --cflags --libs rp`, and
# a fully static one built from `cc -static ... pkg-config --static --cflags --libs rp`.
# With STRIPPED, the installed librp.so, librp.a and rp carry no debug info and the debug files
# under lib/debug match them; with TOOL, bin/rp is installed and runs.
file(REMOVE_RECURSE "${STAGE}")
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endmacro()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${STAGE}/prefix")
foreach(f lib/librp.so lib/librp.a include/rp.h include/rp/rp.hpp lib/cmake/rp/rpConfig.cmake
          lib/cmake/rp/rpConfigVersion.cmake lib/cmake/rp/rpTargets.cmake lib/pkgconfig/rp.pc)
  if(NOT EXISTS "${STAGE}/prefix/${f}")
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()
set(prefix "${STAGE}/prefix")

if(TOOL)
  run("${prefix}/bin/rp" --version)
  if(NOT out MATCHES "^rp 0\\.")
    message(FATAL_ERROR "bin/rp --version printed: ${out}")
  endif()
endif()

# Sections of an ELF file (or of every member of an archive), and its build id.
find_program(READELF readelf REQUIRED)
function(sections file var)
  execute_process(COMMAND ${READELF} -S -W "${file}" OUTPUT_VARIABLE s RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -S ${file} failed")
  endif()
  set(${var} "${s}" PARENT_SCOPE)
endfunction()
function(build_id file var)
  execute_process(COMMAND ${READELF} -n "${file}" OUTPUT_VARIABLE n)
  if(NOT n MATCHES "Build ID: ([0-9a-f][0-9a-f])([0-9a-f]+)")
    message(FATAL_ERROR "${file} has no build id")
  endif()
  set(${var} "${CMAKE_MATCH_1}/${CMAKE_MATCH_2}" PARENT_SCOPE)
endfunction()
if(STRIPPED)
  file(GLOB split "${prefix}/lib/librp.so.*.*.*")
  if(NOT split)
    message(FATAL_ERROR "install is missing lib/librp.so.X.Y.Z")
  endif()
  set(bins "${split}")
  if(TOOL)
    list(APPEND bins "${prefix}/bin/rp")
  endif()
  foreach(bin IN LISTS bins)
    sections("${bin}" s)
    if(s MATCHES "\\.debug_info" OR NOT s MATCHES "\\.gnu_debuglink")
      message(FATAL_ERROR "${bin}: not stripped, or without a .gnu_debuglink")
    endif()
    build_id("${bin}" id)
    set(dbg "${prefix}/lib/debug/.build-id/${id}.debug")
    if(NOT EXISTS "${dbg}")
      message(FATAL_ERROR "${bin}: no debug file ${dbg}")
    endif()
    sections("${dbg}" s)
    if(NOT s MATCHES "\\.debug_info")
      message(FATAL_ERROR "${dbg} holds no debug info")
    endif()
    file(SIZE "${bin}" size)
    file(SIZE "${dbg}" dsize)
    message(STATUS "${bin}: ${size} bytes, debug info ${dbg}: ${dsize} bytes")
  endforeach()
  sections("${prefix}/lib/librp.a" s)
  if(s MATCHES "\\.debug_info|\\.llvmbc")
    message(FATAL_ERROR "lib/librp.a still holds debug info or LLVM bitcode")
  endif()
  file(SIZE "${prefix}/lib/librp.a" size)
  message(STATUS "${prefix}/lib/librp.a: ${size} bytes")
endif()

# find_package(rp REQUIRED) + rp::rp and rp::rp_static.
run(${CMAKE_COMMAND} -S "${CONSUMER_SRC}" -B "${STAGE}/consumer" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${STAGE}/prefix")
run(${CMAKE_COMMAND} --build "${STAGE}/consumer")
run("${STAGE}/consumer/consumer")
run("${STAGE}/consumer/consumer_static")

# find_package(rp REQUIRED) + rp::cpp (the C++17 wrapper).
run(${CMAKE_COMMAND} -S "${CONSUMER_SRC}/../cmake-consumer-cpp" -B "${STAGE}/consumer_cpp" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${STAGE}/prefix")
run(${CMAKE_COMMAND} --build "${STAGE}/consumer_cpp")
run("${STAGE}/consumer_cpp/consumer_cpp")

# pkg-config --cflags --libs rp
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${STAGE}/prefix/lib/pkgconfig")
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs rp OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config cannot find rp")
endif()
message(STATUS "pkg-config --cflags --libs rp: ${flags}")
separate_arguments(flag_list UNIX_COMMAND "${flags}")
run(cc -std=c11 -Wall -Wextra -Werror "${CONSUMER_SRC}/main.c" ${flag_list}
    "-Wl,-rpath,${STAGE}/prefix/lib" -o "${STAGE}/pkgconfig_consumer")
run("${STAGE}/pkgconfig_consumer")

# pkg-config --static: a fully static program (no dynamic section, no interpreter) that runs.
execute_process(COMMAND ${PKG_CONFIG} --static --cflags --libs rp OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --static cannot find rp")
endif()
message(STATUS "pkg-config --static --cflags --libs rp: ${flags}")
separate_arguments(flag_list UNIX_COMMAND "${flags}")
get_filename_component(tests_c "${TEST_VERSION_SRC}" DIRECTORY)
run(cc -static -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L "-I${tests_c}"
    "${TEST_VERSION_SRC}" ${flag_list} -o "${STAGE}/static_consumer")
execute_process(COMMAND ${READELF} -l -d "${STAGE}/static_consumer" OUTPUT_VARIABLE s)
if(s MATCHES "INTERP|NEEDED")
  message(FATAL_ERROR "cc -static with pkg-config --static made a dynamic program:\n${s}")
endif()
run("${STAGE}/static_consumer")
