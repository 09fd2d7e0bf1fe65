// What a host thread runs for the simulation, in one thread-local record: the task (the
// kernel's current thread), the fiber, TSan's fiber for the scheduler context and, in threads
// mode, the simulated CPU. One record, so that a switch looks up its host thread once.
#pragma once

namespace helsim::sim {

class Cpu;
class Fiber;
class Task;

struct HostThread {
	Task *task = nullptr;           // current_task()
	Fiber *fiber = nullptr;         // the fiber running here, switched in by Fiber::switch_in()
	void *tsan_scheduler = nullptr; // TSan: the fiber of the scheduler context (HELSIM_TSAN)
	Cpu *cpu = nullptr;             // threads mode: the simulated CPU this host thread runs
};

// The calling host thread's record. A fiber that switched out may resume on another host
// thread, so no code may keep this reference across a switch. Out of line, and the asm hides
// which address it returns: noinline alone is not enough, as clang (interprocedural constant
// propagation) proved that the result is always the thread_local's address, dropped the call,
// and reused a TLS base computed before the switch.
HostThread &this_host_thread();

} // namespace helsim::sim
