/* Records which 4 KiB pages of a program's code it executes, exactly (no fault-around): loaded
 * with LD_PRELOAD, it makes the program's executable mapping PROT_NONE and, on each first fault in
 * it, notes the page and makes it executable again. On SIGUSR2 and at exit it writes "base HEX"
 * (where the program is loaded) and one page address per line to DIR/touched.PID, DIR being
 * $APT_LAYER_TOUCHED_DIR (default /tmp). scripts/link-order.sh builds and uses it:
 *   clang -shared -fPIC -O2 -o touch.so scripts/linkorder/touch.c
 *   SWIFT_BACKTRACE=enable=no LD_PRELOAD=$PWD/touch.so PROGRAM ...
 * and order.py turns the pages into an lld --symbol-ordering-file. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long lo, hi, base;
static unsigned char *seen;

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

static void dump(int sig) {
    (void)sig;
    char path[4200];
    const char *dir = getenv("APT_LAYER_TOUCHED_DIR");
    snprintf(path, sizeof path, "%s/touched.%d", dir ? dir : "/tmp", getpid());
    FILE *f = fopen(path, "w");
    if (!f || !seen) { if (f) fclose(f); return; }
    fprintf(f, "base %lx\n", base);
    for (unsigned long i = 0; i < (hi - lo) >> 12; i++)
        if (seen[i]) fprintf(f, "%lx\n", lo + (i << 12));
    fclose(f);
}

__attribute__((destructor)) static void at_exit(void) {
    if (seen) dump(0);
}

__attribute__((constructor)) static void setup(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
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
