# Installs the build tree to a staging prefix, then builds and runs examples/cmake-consumer
# against it with find_package(rp), and a program built from `pkg-config --cflags --libs rp`.
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
