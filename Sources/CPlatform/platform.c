#define _GNU_SOURCE  // sync_file_range
#include <fcntl.h>

#include "platform.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// A fixed table, written under a lock and read without one by the signal handler (an entry is
// filled before its `length` is published, and cleared by zeroing `length` first).
#define MOECKPT_MAX_MAPPINGS 4096
static struct { const char *base; volatile size_t length; char *path; char *label; } mappings[MOECKPT_MAX_MAPPINGS];
static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;

void moeckpt_mapping_register(const void *base, size_t length, const char *path, const char *label) {
    pthread_mutex_lock(&mappings_lock);
    for (int i = 0; i < MOECKPT_MAX_MAPPINGS; i++) {
        if (mappings[i].length == 0 && mappings[i].base == NULL) {
            mappings[i].base = base;
            mappings[i].path = strdup(path);
            mappings[i].label = strdup(label);
            __atomic_store_n(&mappings[i].length, length, __ATOMIC_RELEASE);
            break;
        }
    }
    pthread_mutex_unlock(&mappings_lock);
}

void moeckpt_mapping_unregister(const void *base) {
    pthread_mutex_lock(&mappings_lock);
    for (int i = 0; i < MOECKPT_MAX_MAPPINGS; i++) {
        if (mappings[i].base == base && mappings[i].length != 0) {
            __atomic_store_n(&mappings[i].length, 0, __ATOMIC_RELEASE);
            free(mappings[i].path);
            free(mappings[i].label);
            mappings[i].path = NULL;
            mappings[i].label = NULL;
            mappings[i].base = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&mappings_lock);
}

const char *moeckpt_mapping_label(const void *address) {
    const char *a = address;
    for (int i = 0; i < MOECKPT_MAX_MAPPINGS; i++) {
        size_t length = __atomic_load_n(&mappings[i].length, __ATOMIC_ACQUIRE);
        if (length != 0 && a >= mappings[i].base && a < mappings[i].base + length) return mappings[i].label;
    }
    return NULL;
}

const char *moeckpt_mapping_shrunk(void) {
    for (int i = 0; i < MOECKPT_MAX_MAPPINGS; i++) {
        size_t length = __atomic_load_n(&mappings[i].length, __ATOMIC_ACQUIRE);
        struct stat info;
        if (length != 0 && mappings[i].path && stat(mappings[i].path, &info) == 0 && (size_t)info.st_size < length) {
            return mappings[i].label;
        }
    }
    return NULL;
}

static void (*sigbus_cleanup)(void);

static void write_all(const char *text) {
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t n = write(2, text, length);
        if (n <= 0) return;
        text += n;
        length -= (size_t)n;
    }
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    if (sigbus_cleanup) sigbus_cleanup();
    const char *label = info ? moeckpt_mapping_label(info->si_addr) : NULL;
    if (!label) label = moeckpt_mapping_shrunk();
    write_all("moeckpt: error: ");
    if (label) {
        write_all(label);
        write_all(": changed while being read (truncated under its memory mapping)\n");
    } else {
        write_all("an input file changed size while it was being read (truncated under its memory mapping)\n");
    }
    _exit(2);
}

void moeckpt_install_sigbus_handler(void (*cleanup)(void)) {
    sigbus_cleanup = cleanup;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}

int moeckpt_write_back(int fd, long long offset, long long length, int wait) {
#if defined(__linux__)
    unsigned flags = wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
                          : SYNC_FILE_RANGE_WRITE;
    return sync_file_range(fd, offset, length, flags);
#else
    return -1;
#endif
}
