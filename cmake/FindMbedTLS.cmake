# FindMbedTLS: mbedTLS 2.x as Debian's libmbedtls-dev ships it (headers, shared and static
# libraries, no pkg-config or CMake package file).
#
# Defines the imported targets MbedTLS::mbedtls, MbedTLS::mbedx509 and MbedTLS::mbedcrypto
# (linked in that order, each depending on the next), MbedTLS_FOUND, MbedTLS_INCLUDE_DIR and
# MbedTLS_VERSION. MbedTLS_STATIC_LIBRARIES lists the three .a files when they exist (for a
# statically linked binary), in link order.
find_path(MbedTLS_INCLUDE_DIR NAMES mbedtls/ssl.h)
find_library(MbedTLS_TLS_LIBRARY NAMES mbedtls)
find_library(MbedTLS_X509_LIBRARY NAMES mbedx509)
find_library(MbedTLS_CRYPTO_LIBRARY NAMES mbedcrypto)
find_library(MbedTLS_TLS_STATIC_LIBRARY NAMES libmbedtls.a)
find_library(MbedTLS_X509_STATIC_LIBRARY NAMES libmbedx509.a)
find_library(MbedTLS_CRYPTO_STATIC_LIBRARY NAMES libmbedcrypto.a)
mark_as_advanced(MbedTLS_INCLUDE_DIR MbedTLS_TLS_LIBRARY MbedTLS_X509_LIBRARY
  MbedTLS_CRYPTO_LIBRARY MbedTLS_TLS_STATIC_LIBRARY MbedTLS_X509_STATIC_LIBRARY
  MbedTLS_CRYPTO_STATIC_LIBRARY)

if(MbedTLS_INCLUDE_DIR AND EXISTS "${MbedTLS_INCLUDE_DIR}/mbedtls/version.h")
  file(STRINGS "${MbedTLS_INCLUDE_DIR}/mbedtls/version.h" _mbedtls_version_line
       REGEX "^#define[ \t]+MBEDTLS_VERSION_STRING[ \t]+\"[0-9.]+\"")
  string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" MbedTLS_VERSION "${_mbedtls_version_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(MbedTLS
  REQUIRED_VARS MbedTLS_TLS_LIBRARY MbedTLS_X509_LIBRARY MbedTLS_CRYPTO_LIBRARY MbedTLS_INCLUDE_DIR
  VERSION_VAR MbedTLS_VERSION)

if(MbedTLS_FOUND AND NOT TARGET MbedTLS::mbedtls)
  add_library(MbedTLS::mbedcrypto UNKNOWN IMPORTED)
  set_target_properties(MbedTLS::mbedcrypto PROPERTIES IMPORTED_LOCATION "${MbedTLS_CRYPTO_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${MbedTLS_INCLUDE_DIR}")
  add_library(MbedTLS::mbedx509 UNKNOWN IMPORTED)
  set_target_properties(MbedTLS::mbedx509 PROPERTIES IMPORTED_LOCATION "${MbedTLS_X509_LIBRARY}"
    INTERFACE_LINK_LIBRARIES MbedTLS::mbedcrypto)
  add_library(MbedTLS::mbedtls UNKNOWN IMPORTED)
  set_target_properties(MbedTLS::mbedtls PROPERTIES IMPORTED_LOCATION "${MbedTLS_TLS_LIBRARY}"
    INTERFACE_LINK_LIBRARIES MbedTLS::mbedx509)
endif()
if(MbedTLS_TLS_STATIC_LIBRARY AND MbedTLS_X509_STATIC_LIBRARY AND MbedTLS_CRYPTO_STATIC_LIBRARY)
  set(MbedTLS_STATIC_LIBRARIES ${MbedTLS_TLS_STATIC_LIBRARY} ${MbedTLS_X509_STATIC_LIBRARY}
    ${MbedTLS_CRYPTO_STATIC_LIBRARY})
endif()
