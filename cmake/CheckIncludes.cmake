# The module boundaries of docs/design.md §1, checked on every build (cmake -P; the top-level
# CMakeLists.txt runs it before compiling core and the CLI, and again whenever one of their
# sources changes). It fails, naming the file and the include, when
#  * a source of core/ includes a header of net/, apps/ or tests/, libuv, mbedTLS or a socket
#    header (core has no I/O: the simulator must be able to run it);
#  * a source of the CLI (apps/lockmesh) or of an example (apps/examples) includes anything but
#    the public headers (mesh/...), its own folder's headers and system headers — except the
#    internal tools and helper includes listed below, each with its reason (docs/design.md §1,
#    "The CLI and the public API").
# Usage: cmake -DSOURCE_DIR=<repo> [-DSTAMP=<file>] -P cmake/CheckIncludes.cmake

cmake_minimum_required(VERSION 3.25)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "CheckIncludes.cmake: SOURCE_DIR is not set")
endif()

# Internal tools: subcommands whose job is the node's own internals, so they use internal
# headers of any kind (why each is internal: docs/design.md §1).
set(internal_tools
  cmd_cert.cc        # `cert`: writes X.509 certificates with the node's mbedTLS layer
  cmd_trust.cc       # `trust`: edits the node's known_peers file (tofu), in the node's format
  cmd_tls_debug.cc   # `tls-debug`: drives the node's TLS session and peer hello step by step
  tls_debug_net.cc   # its sockets
  cmd_discover.cc    # hidden `discover`: listens to the node's discovery beacons
  cmd_node.cc        # `node`: the mesh claim and socket-directory checks before Node starts
  autostart.cc       # auto-start: the same checks before a background node starts
)
# Helper includes the rest of the CLI still makes, by file (the header's file name, so that
# moving a header to another folder does not break the check). Open work: each is a small
# helper, not an API an embedder needs; a new one must be added here, with its reason.
set(helper_includes
  "cli_support.cc:resource_name.h"  # the name check before a request is sent
  "cli_support.cc:tls_context.h"    # the security levels of this build, for --version
  "flom_config.cc:resource_name.h"  # the same name check for the flom configuration
  "flom_config.cc:errno_text.h"     # errno in messages
  "config.cc:errno_text.h"
  "config.cc:host_port.h"           # HOST:PORT parsing of --listen, --join
  "config.cc:log_line.h"            # the log levels and formats node.log_level/format accept
  "flom_cli.cc:errno_text.h"
  "cmd_info.cc:errno_text.h"
  "cmd_info.cc:time_text.h"         # ISO UTC for the SINCE column, as the node writes times
  "lock_runner.cc:errno_text.h"
  "child_process.cc:errno_text.h"
)

set(violations "")

# Every `#include "x"` / `#include <x>` of `file`, into `out`.
function(includes_of file out)
  file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
  set(result "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*([\"<])([^\">]+)[\">].*$" "\\1\\2" inc "${line}")
    list(APPEND result "${inc}")
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# core/
file(GLOB_RECURSE core_files "${SOURCE_DIR}/core/*.h" "${SOURCE_DIR}/core/*.cc")
foreach(file IN LISTS core_files)
  includes_of("${file}" incs)
  foreach(inc IN LISTS incs)
    if(inc MATCHES "^\"(net|apps|tests)/" OR inc MATCHES "^<(uv|uv/.*|mbedtls/.*|psa/.*)\\.h$"
       OR inc MATCHES "^<(sys/socket|netinet/.*|arpa/inet|netdb|sys/un)\\.h$")
      file(RELATIVE_PATH rel "${SOURCE_DIR}" "${file}")
      string(SUBSTRING "${inc}" 1 -1 header)
      list(APPEND violations "${rel} includes ${header} (core has no I/O: docs/design.md §1)")
    endif()
  endforeach()
endforeach()

# apps/
file(GLOB cli_files "${SOURCE_DIR}/apps/lockmesh/*.h" "${SOURCE_DIR}/apps/lockmesh/*.cc"
     "${SOURCE_DIR}/apps/examples/*.cc" "${SOURCE_DIR}/apps/examples/*.h")
foreach(file IN LISTS cli_files)
  get_filename_component(name "${file}" NAME)
  get_filename_component(dir "${file}" DIRECTORY)
  if(dir STREQUAL "${SOURCE_DIR}/apps/lockmesh" AND name IN_LIST internal_tools)
    continue()
  endif()
  includes_of("${file}" incs)
  foreach(inc IN LISTS incs)
    if(NOT inc MATCHES "^\"")
      continue()  # a system or library header
    endif()
    string(SUBSTRING "${inc}" 1 -1 header)
    if(header MATCHES "^mesh/[^/]+\\.h$" OR EXISTS "${dir}/${header}")
      continue()  # public, or this folder's own
    endif()
    get_filename_component(header_name "${header}" NAME)
    if(dir STREQUAL "${SOURCE_DIR}/apps/lockmesh" AND "${name}:${header_name}" IN_LIST helper_includes)
      continue()
    endif()
    file(RELATIVE_PATH rel "${SOURCE_DIR}" "${file}")
    list(APPEND violations
      "${rel} includes \"${header}\": the CLI and the examples use the public headers (mesh/...) only: publish what is needed, or list the file as an internal tool in cmake/CheckIncludes.cmake with its reason")
  endforeach()
endforeach()

if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "module boundaries (docs/design.md §1) broken:\n  ${text}")
endif()
if(STAMP)
  file(TOUCH "${STAMP}")
endif()
