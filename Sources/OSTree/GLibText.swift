import Glibc

/// What GLib prints for libostree (prune's "Freed objects: 5.8 kB") is converted to the locale's
/// character set; in the C locale a non-ASCII character such as the no-break space in sizes comes
/// out as "?" (issue 26).
public enum GLibText {
    /// Makes the process's character type UTF-8 when the environment's is not (C or POSIX), so
    /// GLib's text reaches the terminal unchanged. Call first thing in `main`, before any thread.
    public static func useUTF8() {
        _ = setlocale(LC_CTYPE, "")
        guard let codeset = nl_langinfo(nl_item(CODESET)), String(cString: codeset) != "UTF-8" else { return }
        _ = setlocale(LC_CTYPE, "C.UTF-8")
    }
}
