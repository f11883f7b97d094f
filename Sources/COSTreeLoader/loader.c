/*
 * Resolves the trampolines of stubs.S: on the first call of any of them, dlopen the five libraries
 * and look up every name of symbols.h, filling `aptl_ostree_table` (stubs.S jumps through it).
 * A missing library or function ends the process with one line on stderr and exit status 127,
 * the shell's "command cannot run": the package depends on them, so only a broken installation
 * gets there, and no libostree call has run yet.
 */
#include "COSTreeLoader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

enum {
#define APTL_SYMBOL(name) aptl_index_##name,
#include "symbols.h"
#undef APTL_SYMBOL
    aptl_symbol_count
};

static const char *const names[aptl_symbol_count] = {
#define APTL_SYMBOL(name) #name,
#include "symbols.h"
#undef APTL_SYMBOL
};

/* Read by the trampolines: NULL until resolved (then each call takes the slow path). */
__attribute__((visibility("hidden"))) void *aptl_ostree_table[aptl_symbol_count];

/* Searched in this order; libostree's own dependencies make the GLib three load with it. */
static const char *const libraries[] = {
    "libostree-1.so.1", "libgio-2.0.so.0", "libgobject-2.0.so.0", "libglib-2.0.so.0", "libarchive.so.13",
};
#define LIBRARY_COUNT (sizeof libraries / sizeof *libraries)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];
static atomic_int loaded;

static void load(void) {
    void *handles[LIBRARY_COUNT];
    for (size_t i = 0; i < LIBRARY_COUNT; i++) {
        handles[i] = dlopen(libraries[i], RTLD_NOW | RTLD_LOCAL);
        if (!handles[i]) {
            snprintf(failure, sizeof failure, "cannot load libostree (%s); install the ostree package", dlerror());
            return;
        }
    }
    void *resolved[aptl_symbol_count];
    for (size_t s = 0; s < aptl_symbol_count; s++) {
        resolved[s] = NULL;
        for (size_t i = 0; i < LIBRARY_COUNT && !resolved[s]; i++) resolved[s] = dlsym(handles[i], names[s]);
        if (!resolved[s]) {
            snprintf(failure, sizeof failure, "the installed libostree, GLib or libarchive has no %s (older than this build needs)",
                     names[s]);
            return;
        }
    }
    for (size_t s = 0; s < aptl_symbol_count; s++) atomic_store_explicit((_Atomic(void *) *)&aptl_ostree_table[s], resolved[s], memory_order_release);
    atomic_store(&loaded, 1);
}

const char *aptl_libostree_load(void) {
    pthread_once(&once, load);
    return atomic_load(&loaded) ? NULL : failure;
}

/* Called by stubs.S's slow path with every argument register saved. */
__attribute__((visibility("hidden"))) void aptl_ostree_load_or_exit(void) {
    const char *reason = aptl_libostree_load();
    if (reason) {
        dprintf(STDERR_FILENO, "apt-layer: %s\n", reason);
        _exit(127);
    }
}
