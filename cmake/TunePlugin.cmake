# tune_add_plugin(<target> SOURCES <file>... [LIBRARIES <library>...])
#
# Builds a tune plugin: a shared library with one TUNE_PLUGIN(...) entry, compiled against the
# SDK (tune::sdk) with hidden visibility so that only the entry is exported. The file is named
# lib<target>.so; put it in a directory listed in TUNE_PLUGIN_PATH, or in tune's plugin folder.
# The built-in plugins are built by this same function.
function(tune_add_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LIBRARIES")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "tune_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE tune::sdk ${arg_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()
