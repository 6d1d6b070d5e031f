# Runs an example several times with options that change only its output (--quiet, --csv
# '', ...) and fails unless every run prints the same `final:` line (its timing removed).
# Same seed, same bits: output options change heap use, never the result.
#   cmake -DEXE=path -DARGS="a;b" -DVARIANTS="--quiet|--csv ''|" -DWORKDIR=dir
#         -DCLEAN=checkpoint -P same_final_line.cmake
# CLEAN (files named CLEAN*, in WORKDIR) is removed before each run, so none resumes.
# A variant "mpi:N rest" runs the example under MPIRUN (a list: launcher and its flags)
# with N ranks: the same final line for any rank count.
string(REPLACE "|" ";" variants "${VARIANTS}")
set(reference "")
foreach(variant IN LISTS variants)
  set(launch "")
  if(variant MATCHES "^mpi:([0-9]+)(.*)$")
    set(launch ${MPIRUN} -np ${CMAKE_MATCH_1})
    set(variant_args "${CMAKE_MATCH_2}")
  else()
    set(variant_args "${variant}")
  endif()
  separate_arguments(extra UNIX_COMMAND "${variant_args}")
  if(CLEAN)
    file(GLOB stale "${WORKDIR}/${CLEAN}*")
    if(stale)
      file(REMOVE ${stale})
    endif()
  endif()
  execute_process(COMMAND ${launch} ${EXE} ${ARGS} ${extra} OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  WORKING_DIRECTORY ${WORKDIR})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "'${EXE} ${variant}' exited with ${rc}")
  endif()
  string(REGEX MATCH "final:[^\n]*" final "${out}")
  string(REGEX REPLACE " seconds=[^ ]*" "" final "${final}")
  if(final STREQUAL "")
    message(FATAL_ERROR "'${EXE} ${variant}' printed no final: line")
  endif()
  message(STATUS "[${variant}] ${final}")
  if(reference STREQUAL "")
    set(reference "${final}")
  elseif(NOT final STREQUAL reference)
    message(FATAL_ERROR "output options changed the result:\n  ${reference}\n  ${final}")
  endif()
endforeach()
