/* libsystemd for Swift: sd_notify and a non-variadic journald send. Only APTLayerAgent imports it. */
#ifndef APT_LAYER_CSYSTEMD_SHIM_H
#define APT_LAYER_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <string.h>
#include <sys/types.h>

/* The layout of Linux's `struct ucred` (SO_PEERCRED), which needs _GNU_SOURCE to be declared. */
typedef struct {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} aptl_ucred;

/* Sends `fields` ("KEY=value" strings, MESSAGE= among them) to journald. */
static inline int aptl_journal_send(const char *const *fields, int count) {
    struct iovec iov[32];
    if (count > 32) count = 32;
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = (void *)fields[i];
        iov[i].iov_len = strlen(fields[i]);
    }
    return sd_journal_sendv(iov, count);
}
#endif
