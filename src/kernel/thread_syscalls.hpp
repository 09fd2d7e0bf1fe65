// Entry points of the thread-control syscalls (issue 11 builds them out): the per-thread
// fs/gs words, the register-set sizes and run-time statistics. The table in syscalls.cpp lists
// them.
#pragma once

#include <helsim/hel.h>

namespace helsim::kernel {

class Thread;

HelError sys_write_fs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_read_fs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_write_gs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_read_gs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_query_register_info(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_query_thread_stats(Thread &self, const HelWord *args, HelWord *outs);

} // namespace helsim::kernel
