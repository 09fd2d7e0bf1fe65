#include "physical_memory.hpp"

#include "host.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace helsim::sim {

PhysicalMemory::PhysicalMemory(std::size_t size)
: size_{(size + kPageSize - 1) & ~(kPageSize - 1)} {
	if (size_ == 0)
		throw std::invalid_argument("helsim: physical memory size must be at least one page");
	fd_ = memfd_create("helsim-physical", MFD_CLOEXEC);
	if (fd_ < 0)
		throw std::runtime_error(
				std::string("helsim: memfd_create failed: ") + std::strerror(errno));
	if (ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
		close(fd_);
		throw std::runtime_error(
				std::string("helsim: cannot size physical memory: ") + std::strerror(errno));
	}
	void *base = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
	if (base == MAP_FAILED) {
		close(fd_);
		throw std::runtime_error(
				std::string("helsim: cannot map physical memory: ") + std::strerror(errno));
	}
	base_ = static_cast<char *>(base);
	free_runs_.emplace(0, size_);
	free_bytes_ = size_;
}

PhysicalMemory::~PhysicalMemory() {
	munmap(base_, size_);
	close(fd_);
}

std::size_t PhysicalMemory::free_bytes() const {
	std::lock_guard lock{mutex_};
	return free_bytes_;
}

std::optional<PhysicalAddr> PhysicalMemory::allocate(std::size_t size, PhysicalAddr limit) {
	size = (size + kPageSize - 1) & ~(kPageSize - 1);
	if (size == 0)
		return std::nullopt;
	std::lock_guard lock{mutex_};
	if (fail_ppm_ && fail_random_.next() % 1'000'000 < fail_ppm_) {
		injected_.fetch_add(1, std::memory_order_relaxed);
		return std::nullopt;
	}
	if (fail_at_.pass()) [[unlikely]]
		return std::nullopt;
	for (auto it = free_runs_.begin(); it != free_runs_.end(); ++it) {
		if (it->first > limit || limit - it->first < size)
			break; // runs are ordered by address: every later one ends above the limit too
		if (it->second < size)
			continue;
		PhysicalAddr address = it->first;
		std::size_t rest = it->second - size;
		free_runs_.erase(it);
		if (rest)
			free_runs_.emplace(address + size, rest);
		free_bytes_ -= size;
		// Frames come back zeroed: a fresh frame never shows an earlier owner's data.
		std::memset(base_ + address, 0, size);
		return address;
	}
	return std::nullopt;
}

std::optional<PhysicalAddr> PhysicalMemory::reserve(std::size_t size) {
	size = (size + kPageSize - 1) & ~(kPageSize - 1);
	if (size == 0)
		return std::nullopt;
	std::lock_guard lock{mutex_};
	for (auto it = free_runs_.rbegin(); it != free_runs_.rend(); ++it) {
		if (it->second < size)
			continue;
		PhysicalAddr run = it->first;
		std::size_t rest = it->second - size;
		free_runs_.erase(std::next(it).base());
		if (rest)
			free_runs_.emplace(run, rest); // the window is the run's top end
		free_bytes_ -= size;
		return run + rest;
	}
	return std::nullopt;
}

void PhysicalMemory::inject_failures(std::uint32_t ppm, std::uint64_t seed) {
	std::lock_guard lock{mutex_};
	fail_ppm_ = ppm;
	fail_random_ = SplitMix64{seed};
}

bool FailAt::pass() {
	if (!current_task())
		return false;
	return passes_.fetch_add(1, std::memory_order_relaxed) + 1 == k_;
}

void PhysicalMemory::free(PhysicalAddr address, std::size_t size) {
	size = (size + kPageSize - 1) & ~(kPageSize - 1);
	std::lock_guard lock{mutex_};
	auto [it, inserted] = free_runs_.emplace(address, size);
	(void)inserted;
	free_bytes_ += size;
	if (auto next = std::next(it);
			next != free_runs_.end() && it->first + it->second == next->first) {
		it->second += next->second;
		free_runs_.erase(next);
	}
	if (it != free_runs_.begin()) {
		auto prev = std::prev(it);
		if (prev->first + prev->second == it->first) {
			prev->second += it->second;
			free_runs_.erase(it);
		}
	}
}

bool PhysicalMemory::map(void *at, PhysicalAddr physical, std::size_t size, Access access) const {
	int prot = PROT_READ | (access.write ? PROT_WRITE : 0) | (access.execute ? PROT_EXEC : 0);
	void *p = mmap(at, size, prot, MAP_SHARED | MAP_FIXED, fd_, static_cast<off_t>(physical));
	return p != MAP_FAILED;
}

} // namespace helsim::sim
