#ifndef MOECKPT_PLATFORM_H
#define MOECKPT_PLATFORM_H

#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/// Serves allocations up to 1 GiB from the heap and keeps freed memory there: activation buffers
/// that come and go with every layer are then reused warm instead of being fresh mappings whose
/// first touch costs 0.4-2.5 s per GiB on these machines.
static inline void moeckpt_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

/// A hint to the core that the thread is spinning on a flag (x86 `pause`, Arm `yield`).
static inline void moeckpt_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// In a forked child: be sent SIGKILL when the parent dies, so that a child never outlives a
/// killed moeckpt; 0 on success. (`prctl` is variadic, which Swift cannot call.)
static inline int moeckpt_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    // The parent may have died before the call: then this process has been re-parented.
    return getppid() == parent ? 0 : -1;
}

/// Asks the kernel to start writing [offset, offset + length) of a file to disk, without waiting
/// (`wait` 0), or waits until that range is on disk (`wait` 1); 0 on success, -1 where there is no
/// such call. (glibc declares `sync_file_range` only for _GNU_SOURCE, which Swift does not see.)
int moeckpt_write_back(int fd, long long offset, long long length, int wait);

/// Input file mappings, so that a fault on one (SIGBUS: the file was truncated under its mapping)
/// can name the file. `label` is copied. Lookups are async-signal-safe.
void moeckpt_mapping_register(const void *base, size_t length, const char *path, const char *label);
void moeckpt_mapping_unregister(const void *base);
/// The label of the mapping that holds `address`, or NULL.
const char *moeckpt_mapping_label(const void *address);
/// The label of a mapped file that is now shorter than its mapping, or NULL.
const char *moeckpt_mapping_shrunk(void);

/// On SIGBUS: runs `cleanup`, prints one line naming the mapped file that faulted (or saying an
/// input changed) and exits with status 2.
void moeckpt_install_sigbus_handler(void (*cleanup)(void));

#endif
