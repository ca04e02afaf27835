# add_proxy_fuzzer(NAME <name> SOURCES <files...> LIBS <targets...> [SECONDS <s>])
#
# One libFuzzer harness (LLVMFuzzerTestOneInput) with its seed corpus in
# test/fuzz/corpus/<name>/. Two ways to build it:
# - FUZZ=ON (clang, SANITIZER=address): linked with libFuzzer; ctest runs it for SECONDS
#   (default FUZZ_SECONDS) on a scratch copy of the corpus, label "fuzz"; a crash, a leak, a
#   timeout (-timeout) or an RSS over -rss_limit_mb fails the test.
# - otherwise (gcc, any sanitizer): linked with fuzz_replay_main.cc, which runs every seed file
#   through the harness once, so the corpus stays a regression test of every tree.
set(FUZZ_SECONDS 60 CACHE STRING "How long ctest runs each fuzzer (FUZZ=ON)")

function(add_proxy_fuzzer)
  cmake_parse_arguments(F "" "NAME;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SECONDS)
    set(F_SECONDS ${FUZZ_SECONDS})
  endif()
  set(corpus ${PROJECT_SOURCE_DIR}/test/fuzz/corpus/${F_NAME})
  if(NOT IS_DIRECTORY ${corpus})
    message(FATAL_ERROR "add_proxy_fuzzer(${F_NAME}): no seed corpus at ${corpus}")
  endif()
  if(FUZZ)
    add_executable(${F_NAME} ${F_SOURCES})
    target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer)
    math(EXPR timeout "${F_SECONDS} + 180")
    add_test(NAME fuzz.${F_NAME}
             COMMAND bash ${PROJECT_SOURCE_DIR}/test/fuzz/run_fuzzer.sh
                     $<TARGET_FILE:${F_NAME}> ${corpus} ${CMAKE_CURRENT_BINARY_DIR}/work/${F_NAME}
                     ${F_SECONDS})
    set_tests_properties(fuzz.${F_NAME} PROPERTIES TIMEOUT ${timeout} LABELS fuzz)
  else()
    add_executable(${F_NAME} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/test/fuzz/fuzz_replay_main.cc)
    add_test(NAME fuzz_replay.${F_NAME} COMMAND ${F_NAME} ${corpus})
    set_tests_properties(fuzz_replay.${F_NAME} PROPERTIES TIMEOUT 120)
  endif()
  target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
  target_include_directories(${F_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
endfunction()
