# Runs the installed helsim-trace-check (ctest trace_check_tool.*, test/CMakeLists.txt):
# a real recording passes with "ok: N events" and exit 0, a broken trace fails with one line per
# problem and exit 1, no file or an unreadable one gives the usage and exit 2.
# Inputs: TOOL (the installed binary), TRACE (a recorded trace), WORK (a scratch directory).

function(expect_run expected_code expected_output)
  execute_process(COMMAND ${TOOL} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
  if(NOT code EQUAL expected_code)
    message(FATAL_ERROR "helsim-trace-check ${ARGN}: exit ${code}, expected ${expected_code}\n"
      "stdout:\n${out}\nstderr:\n${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${expected_output}")
    message(FATAL_ERROR "helsim-trace-check ${ARGN}: output does not match "
      "\"${expected_output}\":\n${out}${err}")
  endif()
  message(STATUS "exit ${code}: ${out}${err}")
endfunction()

if(NOT EXISTS "${TOOL}")
  message(FATAL_ERROR "no installed tool at ${TOOL}")
endif()
expect_run(0 "ok: [1-9][0-9]* events" "${TRACE}")

file(WRITE "${WORK}/broken_trace.json" [=[{"traceEvents":[
{"ph":"M","pid":1,"name":"process_name","args":{"name":"p"}},
{"ph":"M","pid":1,"tid":3,"name":"thread_name","args":{"name":"a"}},
{"ph":"B","pid":1,"tid":3,"ts":2,"name":"x","cat":"c"},
{"ph":"E","pid":1,"tid":3,"ts":1,"name":"x","cat":"c"}
]}
]=])
expect_run(1 "broken_trace.json: event 3: ts does not increase on its track" "${WORK}/broken_trace.json")
# One bad file makes the whole run fail, the good one still says ok.
expect_run(1 "ok: [0-9]+ events.*event 3: ts does not increase" "${TRACE}" "${WORK}/broken_trace.json")
expect_run(2 "usage: helsim-trace-check")
expect_run(2 "cannot read the file" "${WORK}/no_such_trace.json")
expect_run(2 "unknown option --bogus" --bogus "${TRACE}")
