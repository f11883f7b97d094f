/*
 * Small helpers over libostree/GLib for Swift: macros, variadic functions and option structs
 * cannot be used from Swift directly. Only the `OSTree` module imports this header.
 */
#ifndef APT_LAYER_COSTREE_SHIM_H
#define APT_LAYER_COSTREE_SHIM_H

#include <ostree.h>
#include <string.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <archive.h>

static inline void aptl_unref(gpointer object) { if (object) g_object_unref(object); }

static inline gboolean aptl_error_is_cancelled(const GError *error) {
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static inline gboolean aptl_error_is_not_found(const GError *error) {
    return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

/* --- GVariant a{sv} --------------------------------------------------------------------- */

static inline GVariantBuilder *aptl_vardict_new(void) { return g_variant_builder_new(G_VARIANT_TYPE_VARDICT); }

static inline void aptl_vardict_add_string(GVariantBuilder *b, const char *key, const char *value) {
    g_variant_builder_add(b, "{sv}", key, g_variant_new_string(value));
}

static inline void aptl_vardict_add_strv(GVariantBuilder *b, const char *key, const char *const *strv, gssize n) {
    g_variant_builder_add(b, "{sv}", key, g_variant_new_strv(strv, n));
}

static inline void aptl_vardict_add_bool(GVariantBuilder *b, const char *key, gboolean value) {
    g_variant_builder_add(b, "{sv}", key, g_variant_new_boolean(value));
}

/* Ends the builder and returns a strong reference. */
static inline GVariant *aptl_vardict_end(GVariantBuilder *b) {
    GVariant *v = g_variant_ref_sink(g_variant_builder_end(b));
    g_variant_builder_unref(b);
    return v;
}

static inline GVariant *aptl_commit_metadata(GVariant *commit) { return g_variant_get_child_value(commit, 0); }

static inline char *aptl_lookup_string(GVariant *dict, const char *key) {
    GVariant *v = g_variant_lookup_value(dict, key, G_VARIANT_TYPE_STRING);
    if (!v) return NULL;
    char *s = g_variant_dup_string(v, NULL);
    g_variant_unref(v);
    return s;
}

static inline char **aptl_lookup_strv(GVariant *dict, const char *key) {
    GVariant *v = g_variant_lookup_value(dict, key, G_VARIANT_TYPE_STRING_ARRAY);
    if (!v) return NULL;
    char **s = g_variant_dup_strv(v, NULL);
    g_variant_unref(v);
    return s;
}

static inline gboolean aptl_lookup_bool(GVariant *dict, const char *key, gboolean *found) {
    GVariant *v = g_variant_lookup_value(dict, key, G_VARIANT_TYPE_BOOLEAN);
    *found = v != NULL;
    if (!v) return FALSE;
    gboolean b = g_variant_get_boolean(v);
    g_variant_unref(v);
    return b;
}

/* --- GPtrArray ---------------------------------------------------------------------------- */

static inline guint aptl_ptr_array_len(GPtrArray *a) { return a->len; }
static inline gpointer aptl_ptr_array_index(GPtrArray *a, guint i) { return g_ptr_array_index(a, i); }
static inline GPtrArray *aptl_ptr_array_new_objects(void) { return g_ptr_array_new_with_free_func(g_object_unref); }
static inline void aptl_ptr_array_add_ref(GPtrArray *a, gpointer object) { g_ptr_array_add(a, g_object_ref(object)); }

/* --- Repo ---------------------------------------------------------------------------------- */

/* Hardlink checkout of `rev` into dfd/path (the repo's own mode; no copy fallback). */
static inline gboolean aptl_checkout_hardlinks(OstreeRepo *repo, int dfd, const char *path, const char *rev,
                                               OstreeRepoDevInoCache *cache, GCancellable *cancellable,
                                               GError **error) {
    OstreeRepoCheckoutAtOptions opts;
    memset(&opts, 0, sizeof opts);
    opts.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
    opts.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
    opts.no_copy_fallback = TRUE;
    opts.devino_to_csum_cache = cache;
    return ostree_repo_checkout_at(repo, &opts, dfd, path, rev, cancellable, error);
}

/* Lists refs under `prefix` as a NULL-terminated strv (free with g_strfreev). */
static inline char **aptl_list_refs(OstreeRepo *repo, const char *prefix, GCancellable *cancellable, GError **error) {
    GHashTable *refs = NULL;
    if (!ostree_repo_list_refs_ext(repo, prefix, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, cancellable, error))
        return NULL;
    guint n = 0;
    gpointer *keys = g_hash_table_get_keys_as_array(refs, &n);
    char **out = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++) out[i] = g_strdup((const char *)keys[i]);
    g_free(keys);
    g_hash_table_unref(refs);
    return out;
}

/* Reads the regular file at `path` (relative, no leading slash) of commit `rev`; NULL with `error`
 * set when absent or not a regular file. The bytes come back with their length. */
static inline GBytes *aptl_read_commit_file(OstreeRepo *repo, const char *rev, const char *path, GCancellable *cancellable,
                                            GError **error) {
    GFile *root = NULL;
    if (!ostree_repo_read_commit(repo, rev, &root, NULL, cancellable, error)) return NULL;
    GFile *file = g_file_resolve_relative_path(root, path);
    GBytes *bytes = g_file_load_bytes(file, cancellable, NULL, error);
    g_object_unref(file);
    g_object_unref(root);
    return bytes;
}

/* The content checksum and size of the regular file `name` in directory `dir` of a commit; FALSE
 * (no error) when it is absent or not a regular file. */
static inline gboolean aptl_commit_file_info(GFile *dir, const char *name, char **out_checksum, guint64 *out_size,
                                             GCancellable *cancellable) {
    GFile *file = g_file_get_child(dir, name);
    GFileInfo *info = g_file_query_info(file, "standard::type,standard::size", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                        cancellable, NULL);
    gboolean found = info && g_file_info_get_file_type(info) == G_FILE_TYPE_REGULAR;
    if (found) {
        *out_size = (guint64)g_file_info_get_size(info);
        *out_checksum = g_strdup(ostree_repo_file_get_checksum((OstreeRepoFile *)file));
    }
    if (info) g_object_unref(info);
    g_object_unref(file);
    return found;
}

/* The kernel and initramfs libostree installs into /boot for `rev`: `vmlinuz` and `initramfs.img`
 * of the first usr/lib/modules/VERSION directory that holds a `vmlinuz` (libostree's own lookup).
 * TRUE with *out_version NULL when the tree has none there. Sizes and content checksums come from
 * the repository: nothing is read. */
static inline gboolean aptl_boot_files(OstreeRepo *repo, const char *rev, char **out_version, char **out_kernel_checksum,
                                       guint64 *out_kernel_size, char **out_initramfs_checksum,
                                       guint64 *out_initramfs_size, GCancellable *cancellable, GError **error) {
    *out_version = NULL;
    *out_kernel_checksum = NULL;
    *out_initramfs_checksum = NULL;
    *out_kernel_size = 0;
    *out_initramfs_size = 0;
    GFile *root = NULL;
    if (!ostree_repo_read_commit(repo, rev, &root, NULL, cancellable, error)) return FALSE;
    GFile *modules = g_file_resolve_relative_path(root, "usr/lib/modules");
    GFileEnumerator *children = g_file_enumerate_children(modules, "standard::name,standard::type",
                                                          G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, NULL);
    gboolean ok = TRUE;
    while (children) {
        GFileInfo *child = NULL;
        if (!g_file_enumerator_iterate(children, &child, NULL, cancellable, error)) {
            ok = FALSE;
            break;
        }
        if (!child) break;
        if (g_file_info_get_file_type(child) != G_FILE_TYPE_DIRECTORY) continue;
        GFile *dir = g_file_get_child(modules, g_file_info_get_name(child));
        if (aptl_commit_file_info(dir, "vmlinuz", out_kernel_checksum, out_kernel_size, cancellable)) {
            *out_version = g_strdup(g_file_info_get_name(child));
            aptl_commit_file_info(dir, "initramfs.img", out_initramfs_checksum, out_initramfs_size, cancellable);
            g_object_unref(dir);
            break;
        }
        g_object_unref(dir);
    }
    if (children) g_object_unref(children);
    g_object_unref(modules);
    g_object_unref(root);
    return ok;
}

/* --- Sysroot ------------------------------------------------------------------------------- */

/* Deploys (or stages, when `stage`) `rev`; `kargv` overrides the kernel arguments when non-NULL. */
static inline gboolean aptl_deploy(OstreeSysroot *sysroot, const char *osname, const char *rev, GKeyFile *origin,
                                   OstreeDeployment *merge, char **kargv, gboolean stage,
                                   OstreeDeployment **out_deployment, GCancellable *cancellable, GError **error) {
    OstreeSysrootDeployTreeOpts opts;
    memset(&opts, 0, sizeof opts);
    opts.override_kernel_argv = kargv;
    if (stage)
        return ostree_sysroot_stage_tree_with_options(sysroot, osname, rev, origin, merge, &opts, out_deployment,
                                                      cancellable, error);
    return ostree_sysroot_deploy_tree_with_options(sysroot, osname, rev, origin, merge, &opts, out_deployment,
                                                   cancellable, error);
}

/* The boot entry's options, or NULL when the deployment has none (a deployment staged without
   explicit kernel arguments: finalization takes its merge deployment's). */
static inline char *aptl_deployment_kargs_or_null(OstreeDeployment *d) {
    OstreeBootconfigParser *bc = ostree_deployment_get_bootconfig(d);
    if (!bc) return NULL;
    const char *o = ostree_bootconfig_parser_get(bc, "options");
    return o ? g_strdup(o) : NULL;
}

static inline char *aptl_deployment_kargs(OstreeDeployment *d) {
    OstreeBootconfigParser *bc = ostree_deployment_get_bootconfig(d);
    if (!bc) return g_strdup("");
    const char *o = ostree_bootconfig_parser_get(bc, "options");
    return g_strdup(o ? o : "");
}

/* --- Live changes (apply-live) ---------------------------------------------------------- */

/* One diff line: "KIND\tTYPE\tSIZE\tPATH\n"; KIND A (added), M (modified), D (removed), T (type
 * changed); TYPE f (regular), d (directory), l (symlink), o (other); PATH absolute in the commit. */
static inline void aptl_diff_line(GString *out, char kind, GFile *file, GFileInfo *info) {
    char type = 'o';
    guint64 size = 0;
    if (info) {
        switch (g_file_info_get_file_type(info)) {
        case G_FILE_TYPE_REGULAR: type = 'f'; size = (guint64)g_file_info_get_size(info); break;
        case G_FILE_TYPE_DIRECTORY: type = 'd'; break;
        case G_FILE_TYPE_SYMBOLIC_LINK: type = 'l'; break;
        default: break;
        }
    }
    char *path = g_file_get_path(file);
    g_string_append_printf(out, "%c\t%c\t%" G_GUINT64_FORMAT "\t%s\n", kind, type, size, path ? path : "");
    g_free(path);
}

/* Diffs `subpath` ("/usr") of commits `from` and `to` with ostree_diff_dirs: added directories are
 * listed with everything under them, removed ones alone, directories whose content changed are
 * left out (their changed entries are listed). Returns the lines (g_free) or NULL with `error`. */
static inline char *aptl_diff_commits(OstreeRepo *repo, const char *from, const char *to, const char *subpath,
                                      GCancellable *cancellable, GError **error) {
    GFile *root_a = NULL, *root_b = NULL;
    if (!ostree_repo_read_commit(repo, from, &root_a, NULL, cancellable, error)) return NULL;
    if (!ostree_repo_read_commit(repo, to, &root_b, NULL, cancellable, error)) { g_object_unref(root_a); return NULL; }
    const char *rel = subpath[0] == '/' ? subpath + 1 : subpath;
    GFile *a = g_file_resolve_relative_path(root_a, rel);
    GFile *b = g_file_resolve_relative_path(root_b, rel);
    GPtrArray *modified = g_ptr_array_new_with_free_func((GDestroyNotify)ostree_diff_item_unref);
    GPtrArray *removed = g_ptr_array_new_with_free_func(g_object_unref);
    GPtrArray *added = g_ptr_array_new_with_free_func(g_object_unref);
    char *result = NULL;
    if (ostree_diff_dirs(OSTREE_DIFF_FLAGS_NONE, a, b, modified, removed, added, cancellable, error)) {
        GString *out = g_string_new(NULL);
        for (guint i = 0; i < added->len; i++) {
            GFile *f = added->pdata[i];
            GFileInfo *info = g_file_query_info(f, "standard::type,standard::size", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, NULL);
            aptl_diff_line(out, 'A', f, info);
            if (info) g_object_unref(info);
        }
        for (guint i = 0; i < modified->len; i++) {
            OstreeDiffItem *item = modified->pdata[i];
            GFileType ta = item->src_info ? g_file_info_get_file_type(item->src_info) : G_FILE_TYPE_UNKNOWN;
            GFileType tb = item->target_info ? g_file_info_get_file_type(item->target_info) : G_FILE_TYPE_UNKNOWN;
            if (ta == G_FILE_TYPE_DIRECTORY && tb == G_FILE_TYPE_DIRECTORY) continue;
            aptl_diff_line(out, ta == tb ? 'M' : 'T', item->target, item->target_info);
        }
        for (guint i = 0; i < removed->len; i++) aptl_diff_line(out, 'D', removed->pdata[i], NULL);
        result = g_string_free(out, FALSE);
    }
    g_ptr_array_unref(modified);
    g_ptr_array_unref(removed);
    g_ptr_array_unref(added);
    g_object_unref(a);
    g_object_unref(b);
    g_object_unref(root_a);
    g_object_unref(root_b);
    return result;
}

/* Checks `subpath` of `rev` out to `path` as copies (never hardlinks into the repository), merging
 * into what is there: files replace files (UNION_FILES), directories are merged. */
static inline gboolean aptl_checkout_copy(OstreeRepo *repo, const char *rev, const char *subpath, const char *path,
                                          GCancellable *cancellable, GError **error) {
    OstreeRepoCheckoutAtOptions opts;
    memset(&opts, 0, sizeof opts);
    opts.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
    opts.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_UNION_FILES;
    opts.force_copy = TRUE;
    opts.subpath = subpath;
    return ostree_repo_checkout_at(repo, &opts, AT_FDCWD, path, rev, cancellable, error);
}

/* --- OCI image import ------------------------------------------------------------------- */

/* The serialized bytes of a loaded commit variant (what its checksum is taken over). */
static inline gconstpointer aptl_variant_data(GVariant *v, gsize *out_size) {
    *out_size = g_variant_get_size(v);
    return g_variant_get_data(v);
}

/* The first half of aptl_import_layers: imports the tar archives `paths` in order into one tree,
 * writes it in its own transaction, and checks that its root is the tree `commit` (a validated
 * commit variant) names. */
static inline gboolean aptl_import_layers_tree(OstreeRepo *repo, const char *const *paths, int n_paths, GVariant *commit,
                                               GCancellable *cancellable, GError **error) {
    if (!ostree_repo_prepare_transaction(repo, NULL, cancellable, error)) return FALSE;
    OstreeMutableTree *mtree = ostree_mutable_tree_new();
    GFile *root = NULL;
    gboolean ok = TRUE;
    for (int i = 0; ok && i < n_paths; i++) {
        struct archive *a = archive_read_new();
        archive_read_support_format_all(a);
        archive_read_support_filter_all(a);
        if (archive_read_open_filename(a, paths[i], 1 << 16) != ARCHIVE_OK) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "open layer %s: %s", paths[i], archive_error_string(a));
            ok = FALSE;
        } else {
            OstreeRepoImportArchiveOptions opts;
            memset(&opts, 0, sizeof opts);
            ok = ostree_repo_import_archive_to_mtree(repo, &opts, a, mtree, NULL, cancellable, error);
            if (!ok) g_prefix_error(error, "layer %d: ", i + 1);
        }
        archive_read_free(a);
    }
    ok = ok && ostree_repo_write_mtree(repo, mtree, &root, cancellable, error) &&
         ostree_repo_commit_transaction(repo, NULL, cancellable, error);
    g_object_unref(mtree);
    if (!ok) {
        ostree_repo_abort_transaction(repo, NULL, NULL);
        if (root) g_object_unref(root);
        return FALSE;
    }
    GVariant *contents_v = g_variant_get_child_value(commit, 6);
    GVariant *meta_v = g_variant_get_child_value(commit, 7);
    char *contents = ostree_checksum_from_bytes_v(contents_v);
    char *meta = ostree_checksum_from_bytes_v(meta_v);
    const char *got_contents = ostree_repo_file_tree_get_contents_checksum((OstreeRepoFile *)root);
    const char *got_meta = ostree_repo_file_tree_get_metadata_checksum((OstreeRepoFile *)root);
    if (g_strcmp0(contents, got_contents) != 0 || g_strcmp0(meta, got_meta) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "the layers make tree %.12s/%.12s, not the commit's tree %.12s/%.12s", got_contents, got_meta, contents, meta);
        ok = FALSE;
    }
    g_free(contents);
    g_free(meta);
    g_variant_unref(contents_v);
    g_variant_unref(meta_v);
    g_object_unref(root);
    return ok;
}

/* Imports the tar archives `paths` (any compression libarchive reads) in order into one tree,
 * writes it (first transaction), checks that its root is the tree the serialized commit
 * `commit_data` names, then writes that commit object verbatim, checked against
 * `expected_checksum`, and points `ref` at it (second transaction): the commit is the image's
 * exact commit or nothing but unreferenced objects is written. */
static inline gboolean aptl_import_layers(OstreeRepo *repo, const char *const *paths, int n_paths, const void *commit_data,
                                          gsize commit_size, const char *expected_checksum, const char *ref,
                                          GCancellable *cancellable, GError **error) {
    GBytes *bytes = g_bytes_new(commit_data, commit_size);
    GVariant *commit = g_variant_ref_sink(g_variant_new_from_bytes(OSTREE_COMMIT_GVARIANT_FORMAT, bytes, FALSE));
    g_bytes_unref(bytes);
    gboolean ok = TRUE;
    /* Normal form, then libostree's own structure check (32-byte checksums, a valid parent…):
     * the tree checksums below are read out of it. */
    if (!g_variant_is_normal_form(commit)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the image's commit object is not a valid OSTree commit");
        ok = FALSE;
    } else if (!ostree_validate_structureof_commit(commit, error)) {
        g_prefix_error(error, "the image's commit object is not a valid OSTree commit: ");
        ok = FALSE;
    }
    ok = ok && aptl_import_layers_tree(repo, paths, n_paths, commit, cancellable, error);
    ok = ok && ostree_repo_prepare_transaction(repo, NULL, cancellable, error);
    if (ok) {
        ok = ostree_repo_write_metadata(repo, OSTREE_OBJECT_TYPE_COMMIT, expected_checksum, commit, NULL, cancellable, error);
        if (ok && ref) ostree_repo_transaction_set_ref(repo, NULL, ref, expected_checksum);
        ok = ok && ostree_repo_commit_transaction(repo, NULL, cancellable, error);
        if (!ok) ostree_repo_abort_transaction(repo, NULL, NULL);
    }
    g_variant_unref(commit);
    return ok;
}

#endif
