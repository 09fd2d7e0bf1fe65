// Which sanitizer the including translation unit is built with: GCC defines __SANITIZE_*__,
// clang answers __has_feature. HELSIM_ASAN / HELSIM_TSAN for #ifdef, kAsan / kTsan for code.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define HELSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HELSIM_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define HELSIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HELSIM_TSAN 1
#endif
#endif

namespace helsim::sim {

#ifdef HELSIM_ASAN
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#ifdef HELSIM_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

} // namespace helsim::sim
