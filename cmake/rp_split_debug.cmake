# Makes the installed copy of one built file: debug info split off and the copy stripped.
#   cmake -DMODE=shared|exe|static -DINPUT=built -DOUT=stripped-copy [-DDEBUG_DIR=dir]
#         -DOBJCOPY=objcopy -DREADELF=readelf -P rp_split_debug.cmake
# shared, exe: DEBUG_DIR is emptied and receives .build-id/NN/REST.debug (the GNU build-id
#   layout gdb and debuginfod look up under <prefix>/lib/debug), debug sections compressed;
#   OUT is INPUT stripped (--strip-unneeded for a library, --strip-all for a program) with a
#   .gnu_debuglink to that file.
# static: OUT is INPUT without debug info and without rustc's embedded LLVM bitcode (.llvmbc,
#   .llvmcmd: only rustc's own LTO reads them; a C linker never does).
cmake_minimum_required(VERSION 3.16)
foreach(var MODE INPUT OUT OBJCOPY)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "rp_split_debug.cmake: ${var} is not set")
  endif()
endforeach()

macro(rp_run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc ERROR_VARIABLE _err OUTPUT_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "command failed (${_rc}): ${ARGN}\n${_out}${_err}")
  endif()
endmacro()

get_filename_component(_out_dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${_out_dir}")
set(_tmp "${OUT}.tmp")

if(MODE STREQUAL "static")
  rp_run(${OBJCOPY} --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd "${INPUT}" "${_tmp}")
  file(RENAME "${_tmp}" "${OUT}")
  return()
endif()

if(NOT MODE STREQUAL "shared" AND NOT MODE STREQUAL "exe")
  message(FATAL_ERROR "rp_split_debug.cmake: MODE must be shared, exe or static, not ${MODE}")
endif()

# The build id names the debug file; without one it is named after the file.
get_filename_component(_name "${INPUT}" NAME)
set(_debug_rel "${_name}.debug")
if(READELF)
  execute_process(COMMAND ${READELF} -n "${INPUT}" OUTPUT_VARIABLE _notes RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _notes MATCHES "Build ID: ([0-9a-f][0-9a-f])([0-9a-f]+)")
    set(_debug_rel ".build-id/${CMAKE_MATCH_1}/${CMAKE_MATCH_2}.debug")
  endif()
endif()
file(REMOVE_RECURSE "${DEBUG_DIR}")
set(_debug "${DEBUG_DIR}/${_debug_rel}")
get_filename_component(_debug_dir "${_debug}" DIRECTORY)
file(MAKE_DIRECTORY "${_debug_dir}")
rp_run(${OBJCOPY} --only-keep-debug --compress-debug-sections=zlib "${INPUT}" "${_debug}")
execute_process(COMMAND chmod 0644 "${_debug}") # data, not a program

if(MODE STREQUAL "shared")
  set(_strip --strip-unneeded)
else()
  set(_strip --strip-all)
endif()
rp_run(${OBJCOPY} ${_strip} "--add-gnu-debuglink=${_debug}" "${INPUT}" "${_tmp}")
file(RENAME "${_tmp}" "${OUT}")
