# add_proxy_test(NAME <name> SOURCES <files...> LIBS <targets...> [TIMEOUT <seconds>] [LABELS <l>])
#
# One gtest executable per component; every TEST() becomes its own ctest entry through
# gtest_discover_tests, with a timeout so a hung test fails instead of stalling CI.
include(GoogleTest)

function(add_proxy_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  # gtest_discover_tests (CMake 3.25) flattens PROPERTIES into words, so a second label would
  # turn into a property name and the first label could be lost silently: allow one.
  list(LENGTH T_LABELS label_count)
  if(label_count GREATER 1)
    message(FATAL_ERROR "add_proxy_test(${T_NAME}): one LABELS value at most, got '${T_LABELS}'")
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
