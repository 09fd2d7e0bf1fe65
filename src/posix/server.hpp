// The POSIX server: one simulated process (its own universe and address space) that owns
// every POSIX process's universe, space, thread, file table and pages, observes the threads
// to serve their supercalls, serves each process's POSIX lane, and serves the passthrough
// lanes of pipes, tmpfs files and devices. Managarm's posix-subsystem, on helsim's public
// hel API.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <helsim/hel.h>

#include "async.hpp"
#include "file.hpp"
#include "memory.hpp"
#include "protocol.hpp"
#include "signals.hpp"
#include "state.hpp"

namespace helsim::posix::detail {

// One slot of a process's file table.
struct Fd {
	std::shared_ptr<OpenFile> file;
	bool cloexec = false;
	HelHandle handle = kHelNullHandle; // the passthrough lane in the process's universe
};

// A POSIX process as the server sees it.
struct Process {
	pid_t pid = 0;
	pid_t ppid = 0;
	std::string path;
	Launch launch; // what the process's entry runs (host memory the process reads)

	HelHandle universe = kHelNullHandle;
	HelHandle space = kHelNullHandle;
	HelHandle thread = kHelNullHandle;
	HelHandle posix_lane = kHelNullHandle;            // the server's end
	HelHandle posix_lane_in_process = kHelNullHandle; // the client's end, in its universe
	std::array<char, 16> credentials{};

	// Pages: the server's mapping (to write) and the process's (what it is told).
	HelHandle *file_table = nullptr;
	HelHandle *file_table_in_process = nullptr;
	protocol::ThreadPage *thread_page = nullptr;
	protocol::ThreadPage *thread_page_in_process = nullptr;
	protocol::TrackerPage *clock_page_in_process = nullptr;

	std::array<Fd, protocol::kFileTableSize> fds{};

	bool alive = true; // false once it exited or was killed: it is a zombie until its thread ends
	// Its thread (this image's) fetched its process data: the client is set up and the program
	// runs. A thread that ends before never ran it (its client could not make its queue).
	bool image_started = false;

	// ---- signals (signals.cpp)
	SignalState signals;
	bool stopped = false; // the observe loop holds a stop: signals are taken before the resume
	std::unique_ptr<Condition> signal_event; // wakes sigsuspend and sigtimedwait (lazily made)
											 // ---- end signals

	// ---- family and memory (process.cpp)
	std::weak_ptr<Process> parent;                  // ppid's process; empty for ppid 0
	std::vector<std::shared_ptr<Process>> children; // living children and zombies
	std::optional<int> wait_status;                 // set once it ended: a zombie until waited
	std::unique_ptr<Condition> children_changed;    // waitpid waits here
	std::vector<AnonArea> areas;                    // its mmap'd memory
	std::list<Launch> images;                       // execve's programs; the thread runs back()
	HelHandle next_thread = kHelNullHandle;         // execve: the new image's thread, stopped
	// ---- end family and memory

	// ---- readiness (poll.cpp)
	// The process's own waiting poll/epoll_wait requests: its end wakes them (they answer
	// nobody, but must end so that the server can).
	StatusWatchers waiting;
	// ---- end readiness
};

class Server {
public:
	Server(System::State &state, Executor &executor);
	~Server();
	Server(const Server &) = delete;
	Server &operator=(const Server &) = delete;

	// The server thread's body: runs until no process is left and no spawn is pending. A
	// server that cannot set up its clock page fails the pending spawns (State::server_failed).
	void run();

	Executor &executor() { return executor_; }
	System::State &state() { return state_; }
	CancelRegistry &cancels() { return cancels_; }
	// Cancels the request with this id from the process with these credentials (EINTR).
	void cancel_request(const std::array<char, 16> &credentials, std::uint64_t cancel_id);
	std::shared_ptr<Process> process_by_credentials(const std::array<char, 16> &credentials) const;

private:
	// Processes.
	void start_pending_spawns();
	HelError start_process(const PendingSpawn &spawn, Process *parent);
	HelError map_pages(Process &process);
	void end_process(Process &process, int status);
	void reap(const std::shared_ptr<Process> &process);
	void remember_credentials(const std::shared_ptr<Process> &process);
	void forget_credentials(const Process &process);
	Task observe(std::shared_ptr<Process> process);
	Task serve_requests(std::shared_ptr<Process> process);
	// Checked copies between the server and a process's memory, through the kernel
	// (kHelSubmitReadMemory / kHelSubmitWriteMemory on its thread): false where the process's
	// memory faults, which is the process's error (-EFAULT), never the server's fault.
	Async<bool> copy_from_process(const Process &process, std::uint64_t address, void *to,
			std::size_t size);
	Async<bool> copy_to_process(const Process &process, std::uint64_t address, const void *from,
			std::size_t size);
	Task handle_request(std::shared_ptr<Process> process, HelHandle conversation,
			protocol::Request request);
	// A supercall's answer: Out0 = value, Out1 = a negative errno or 0. Returns false when
	// the thread must not be resumed now (it was ended).
	Async<bool> serve_supercall(std::shared_ptr<Process> process, std::uint32_t number);
	// What supercalls and their request fallbacks share: a value or a negative errno.
	std::int64_t exit(Process &process, int code);
	std::int64_t anon_allocate(Process &process, std::uint64_t size, int prot, int flags);
	std::int64_t anon_free(Process &process, std::uint64_t address, std::uint64_t size);

	// Files.
	int install(Process &process, std::shared_ptr<OpenFile> file, bool cloexec, int lowest,
			int exact = -1);
	// A new description: its lane made and served, then installed at the lowest free fd.
	// -ENOMEM if the lane could not be made.
	int install_new(Process &process, const std::shared_ptr<OpenFile> &file, bool cloexec);
	// The rest of install_new, for a description already serving (open waits in between).
	int install_started(Process &process, const std::shared_ptr<OpenFile> &file, bool cloexec);
	int close_fd(Process &process, int fd);
	void close_all(Process &process);
	OpenFile *file_of(Process &process, int fd);
	// -ENOMEM if the description's lane could not be made or its device's server not reached.
	Async<std::int64_t> open(std::shared_ptr<Process> process, std::string path, int flags,
			mode_t mode);
	std::int64_t dup(Process &process, int fd, int newfd, int flags, protocol::DupKind kind);
	std::int64_t fcntl(Process &process, int fd, int cmd, std::int64_t arg);
	std::int64_t pipe(Process &process, int flags, std::int64_t &second);
	// file_table off: a file request by fd, forwarded over the file's passthrough lane.
	Async<bool> forward(std::shared_ptr<Process> process, HelHandle conversation,
			protocol::Request request);

	// ---- signals (signals.cpp)
	// Generates `signo` for `target`, as Linux's send_signal: ignored, it is dropped; blocked,
	// it stays pending; otherwise the thread is interrupted (or alerted, thread page) and the
	// signal is delivered at its next stop. `code` and `sender` fill the siginfo (SI_USER,
	// CLD_EXITED with `status` for SIGCHLD, ...).
	void send_signal(Process &target, int signo, int code = SI_USER, pid_t sender = 0,
			int status = 0);
	// Supercalls kSuperSigKill..kSuperSigTimedWait (see protocol.hpp); fills Out words in `gprs`.
	// Returns false when the thread must not be resumed now.
	Async<bool> signal_supercall(std::shared_ptr<Process> process, std::uint32_t number,
			HelWord *gprs);
	// Requests kSigaction..kSigTimedWait on the POSIX lane: the call's value or a negative errno.
	Async<std::int64_t> signal_request(std::shared_ptr<Process> process,
			const protocol::Request &request, protocol::Response &response);

	// What a supercall and its request fallback share: Out0 (or a negative errno) and Out2.
	struct SignalAnswer {
		std::int64_t value = 0;
		std::int64_t value2 = 0;
	};
	Async<SignalAnswer> signal_call(std::shared_ptr<Process> process, std::uint32_t number,
			std::array<std::uint64_t, 4> args, std::uint64_t cancel_id);
	Async<std::int64_t> set_action(std::shared_ptr<Process> process, protocol::Request request);
	// At a stop: runs the handler of one deliverable signal (frame, upcall) or applies its
	// default action. False when the process died.
	Async<bool> deliver(std::shared_ptr<Process> process);
	// Writes the next deliverable signal's frame: its address, 0 if none may run now, ~0 if
	// the process died instead.
	Async<std::uint64_t> push_frame(std::shared_ptr<Process> process);
	Async<std::int64_t> restore(std::shared_ptr<Process> process, std::uint64_t frame);
	Async<std::int64_t> suspend(std::shared_ptr<Process> process, std::uint64_t seq,
			std::uint64_t cancel_id);
	Async<std::int64_t> timed_wait(std::shared_ptr<Process> process, std::uint64_t set,
			std::uint64_t timeout, std::uint64_t info, std::uint64_t cancel_id);
	Task signal_timer(std::shared_ptr<Process> process, std::shared_ptr<bool> fired,
			std::uint64_t deadline, std::uint64_t tag);
	Async<std::int64_t> altstack(std::shared_ptr<Process> process, std::uint64_t set,
			std::uint64_t old);
	std::int64_t send_kill(Process &sender, std::int64_t pid, int signo);
	// Makes the thread take its signals: alerts it (thread page, inside a SignalGuard) or
	// interrupts it. Nothing while the observe loop holds a stop.
	void kick(Process &process);
	// Thread page, flag moved from 1 to 2: the signal waits for the guard's exit
	// (kSuperSigRaise), and the thread's queue is alerted.
	void defer(Process &process);
	// Drops the deliverable signals nobody handles; true if one that is handled remains.
	bool drop_ignored(Process &process);
	void kill_by_signal(Process &process, int signo);
	Condition &signal_event(Process &process);
	std::uint64_t next_timer_tag_ = 1;
	// ---- end signals

	// ---- cancellation (cancel.cpp)
	// kSuperCancel / kCancel: cancels the process's request with that cancellation id (it
	// answers -EINTR). 0, or a negative errno.
	std::int64_t cancel_request(Process &process, std::uint64_t cancel_id);
	// ---- end cancellation

	// ---- family and memory (process.cpp)
	// kSuperFork and kSuperExecve; fills Out words in `gprs`. Returns false when the thread
	// must not be resumed now.
	Async<bool> process_supercall(std::shared_ptr<Process> process, std::uint32_t number,
			HelWord *gprs);
	// Requests kFork, kExecve, kWaitPid on the POSIX lane.
	Async<std::int64_t> process_request(std::shared_ptr<Process> process,
			const protocol::Request &request, const std::string &tail,
			protocol::Response &response);
	// A process by pid while it lives or is a zombie (kill(pid, 0) must find both); nullptr
	// once it was waited for, or never was.
	std::shared_ptr<Process> find_process(pid_t pid) const;
	// Whether a child of `parent` that ends is reaped at once (no zombie, waitpid -ECHILD):
	// the parent ignores SIGCHLD or installed its action with SA_NOCLDWAIT.
	bool child_reaped_at_once(const Process &parent) const;
	// Universe, space, POSIX lane and pages of a new process; undone by discard().
	HelError make_process(Process &process);
	// Its thread (stopped) running `launch`, its credentials, and the tasks that serve it.
	HelError launch_process(const std::shared_ptr<Process> &process);
	// Undoes make_process and everything added since, for a process that never ran.
	void discard(Process &process);
	Async<std::int64_t> fork(std::shared_ptr<Process> parent, HelWord entry, HelWord arg);
	// A copy of `area` for `child`: the same memory (shared), a fork of it (copy-on-write,
	// `forked` remembers the forks made so far) or a fresh copy (fork_cow off).
	Async<std::int64_t> fork_area(Process &child, const AnonArea &area,
			std::map<const MemoryObject *, std::shared_ptr<MemoryObject>> &forked);
	// 0 once the new image is set up (the caller's thread is killed), or a negative errno.
	std::int64_t execve(const std::shared_ptr<Process> &process, const std::string &path,
			std::vector<std::string> argv);
	// observe()'s end after execve killed the old thread: the new image's generation.
	void start_image(const std::shared_ptr<Process> &process, HelHandle thread);
	Async<std::int64_t> waitpid(std::shared_ptr<Process> process, pid_t pid, int options,
			std::uint64_t cancel_id, protocol::Response &response);
	// end_process's family part: children to the reaper, the parent told.
	void leave_family(Process &process, int status);
	void unmap_areas(Process &process);
	std::map<pid_t, std::weak_ptr<Process>> processes_; // living processes and zombies
	// ---- end family and memory

	// ---- readiness (poll.cpp)
	// Requests kPoll..kEventfd on the POSIX lane.
	Async<std::int64_t> readiness_request(std::shared_ptr<Process> process,
			const protocol::Request &request, const std::string &tail,
			protocol::Response &response);
	Async<std::int64_t> poll(std::shared_ptr<Process> process, const protocol::Request &request,
			const std::string &tail);
	Async<std::int64_t> epoll_wait(std::shared_ptr<Process> process,
			const protocol::Request &request);
	std::int64_t epoll_ctl(Process &process, const protocol::Request &request,
			const std::string &tail);
	// Wakes `waker` (timed_out set) at `deadline` unless cancel_timer(tag) came first.
	std::uint64_t start_timer(std::shared_ptr<Waker> waker, std::uint64_t deadline);
	void cancel_timer(std::uint64_t tag);
	// Device servers (device.cpp): started at the first open of their device, stopped when
	// this server ends (the control lanes close).
	struct DeviceLinks;
	friend class DeviceFile;
	HelHandle device_control(const std::shared_ptr<posix::Device> &device);
	// The device's server closed `control` (it could not start): the next open starts another.
	void device_ended(const std::shared_ptr<posix::Device> &device, HelHandle control);
	std::shared_ptr<DeviceLinks> device_links_;

public:
	// A write found no reader (-EPIPE): SIGPIPE for the writer, as Linux's pipe_write.
	void broken_pipe(const Requester &writer);

private:
	// ---- end readiness

	// The clock owner's page (mapped read-only into every process), made at the server's start.
	HelError map_clock();
	void write_clock(std::int64_t offset, std::uint64_t now);
	std::int64_t realtime_now();

	System::State &state_;
	Executor &executor_;
	std::map<std::array<char, 16>, std::weak_ptr<Process>> by_credentials_;
	CancelRegistry cancels_;
	std::uint64_t next_pipe_ino_ = std::uint64_t{1} << 32;
	HelHandle clock_memory_ = kHelNullHandle;
	protocol::TrackerPage *clock_page_ = nullptr;
};

} // namespace helsim::posix::detail
