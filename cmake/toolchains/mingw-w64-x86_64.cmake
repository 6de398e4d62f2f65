# Cross-compiling for 64-bit Windows with MinGW-w64 (Debian: gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64):
#   cmake -S . -B build/windows -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake
# librp's CMakeLists.txt then has cargo build the Rust target x86_64-pc-windows-gnu (it needs
# `rustup target add x86_64-pc-windows-gnu`; rustc links with x86_64-w64-mingw32-gcc, found on
# PATH). The same file configures a project that consumes the installed librp (find_package(rp)).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_rp_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_rp_mingw}-gcc)
set(CMAKE_CXX_COMPILER ${_rp_mingw}-g++)
set(CMAKE_RC_COMPILER ${_rp_mingw}-windres)

# Headers and libraries from the MinGW sysroot only; programs (cargo, wine) from the host;
# packages (find_package(rp) with CMAKE_PREFIX_PATH) from the sysroot or the given prefixes.
set(CMAKE_FIND_ROOT_PATH /usr/${_rp_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
