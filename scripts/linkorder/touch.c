/* Records which 4 KiB pages of a program's code it executes, exactly (no fault-around): loaded
 * with LD_PRELOAD, it makes the program's executable mapping PROT_NONE and, on each first fault in
 * it, notes the page and makes it executable again. On SIGUSR2 and at exit it writes "base HEX"
 * (where the program is loaded) and one page address per line to DIR/touched.PID, DIR being
 * $APT_LAYER_TOUCHED_DIR (default /tmp): written to DIR/.touched.PID and renamed, so a file that
 * exists is complete, and with write(2) only (async-signal-safe: the signal may come while another
 * thread holds malloc's lock). Only the program $APT_LAYER_TOUCHED_PROGRAM (its resolved path) is
 * traced; other programs it runs inherit LD_PRELOAD and are left alone.
 * scripts/link-order.sh builds and uses it:
 *   clang -shared -fPIC -O2 -o touch.so scripts/linkorder/touch.c
 *   SWIFT_BACKTRACE=enable=no APT_LAYER_TOUCHED_PROGRAM=PATH LD_PRELOAD=$PWD/touch.so PATH ...
 * and order.py turns the pages into an lld --symbol-ordering-file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long lo, hi, base;
static unsigned char *seen;
static char final_path[4200], temporary_path[4200];
static pid_t traced_pid; /* a fork of it (libostree's fsfreeze watchdog) writes nothing */

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)context;
    unsigned long page = (unsigned long)info->si_addr & ~4095UL;
    if (page >= lo && page < hi) {
        seen[(page - lo) >> 12] = 1;
        mprotect((void *)page, 4096, PROT_READ | PROT_EXEC);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Appends "PREFIX HEX\n" to buffer at *used, flushing to fd when it fills. */
static void put(int fd, char *buffer, size_t *used, const char *prefix, unsigned long value) {
    if (*used > 4000) {
        (void)!write(fd, buffer, *used);
        *used = 0;
    }
    while (*prefix) buffer[(*used)++] = *prefix++;
    char digits[16];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value);
    while (n) buffer[(*used)++] = digits[--n];
    buffer[(*used)++] = '\n';
}

static void dump(int sig) {
    (void)sig;
    if (!seen || getpid() != traced_pid) return;
    int fd = open(temporary_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char buffer[4096];
    size_t used = 0;
    put(fd, buffer, &used, "base ", base);
    for (unsigned long i = 0; i < (hi - lo) >> 12; i++)
        if (seen[i]) put(fd, buffer, &used, "", lo + (i << 12));
    (void)!write(fd, buffer, used);
    close(fd);
    rename(temporary_path, final_path);
}

__attribute__((destructor)) static void at_exit(void) { dump(0); }

__attribute__((constructor)) static void setup(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    const char *traced = getenv("APT_LAYER_TOUCHED_PROGRAM");
    if (!traced || strcmp(traced, exe) != 0) return;
    traced_pid = getpid();
    const char *dir = getenv("APT_LAYER_TOUCHED_DIR");
    snprintf(final_path, sizeof final_path, "%s/touched.%d", dir ? dir : "/tmp", getpid());
    snprintf(temporary_path, sizeof temporary_path, "%s/.touched.%d", dir ? dir : "/tmp", getpid());
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return;
    char line[8192];
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end, offset;
        char perms[8], path[4096] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &start, &end, perms, &offset, path) >= 4 && strcmp(path, exe) == 0) {
            if (offset == 0 && !base) base = start;
            if (perms[2] == 'x') { lo = start; hi = end; }
        }
    }
    fclose(maps);
    if (!lo) return;
    seen = calloc((hi - lo) >> 12, 1);
    struct sigaction action = {0};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &action, NULL);
    signal(SIGUSR2, dump);
    mprotect((void *)lo, hi - lo, PROT_NONE);
}
