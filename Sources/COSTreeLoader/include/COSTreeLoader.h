/*
 * libostree, loaded on first use. The programs are not linked against libostree, GIO, GObject,
 * GLib or libarchive: those five libraries and the ~45 they pull in (curl, gpgme, gnutls, krb5…)
 * would cost every process about 11 MB of memory and half its start-up time, and `apt-layer
 * --version`, `--help`, the API client commands and an idle agent use none of them. Instead each
 * function the `OSTree` module calls is a small trampoline (stubs.S); the first call loads the
 * libraries and resolves every trampoline at once (loader.c).
 */
#ifndef APT_LAYER_COSTREE_LOADER_H
#define APT_LAYER_COSTREE_LOADER_H

/* Loads the libraries and resolves every function, once per process; safe from any thread.
 * Returns NULL when loaded, else a one-line reason (a library or a function missing). */
const char *aptl_libostree_load(void);

#endif
