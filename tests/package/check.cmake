# Builds and runs tests/package/consumer against metalearn in one of three ways.
# -D MODE=install|subdirectory|fetchcontent -D SOURCE_DIR=... -D BUILD_DIR=... (metalearn's
# build tree, for install) -D WORK_DIR=... -D GENERATOR=... -D CXX=...
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(extra "")
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  set(extra -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCONSUME=${MODE}
    -DMETALEARN_SOURCE_DIR=${SOURCE_DIR} ${extra})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
message(STATUS "${last_output}")
# A consumer sees its own test only: metalearn's tests, examples and benchmarks stay off.
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N WORKING_DIRECTORY ${WORK_DIR}/build
                OUTPUT_VARIABLE listing)
if(NOT listing MATCHES "Total Tests: 1\n")
  message(FATAL_ERROR "expected exactly the consumer's own test, ctest -N says:\n${listing}")
endif()
