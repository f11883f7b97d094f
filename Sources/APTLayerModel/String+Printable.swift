extension String {
    /// Whether every character is printable ASCII (`!`…`~`, and the space when `allowingSpace`).
    public func isPrintableASCII(allowingSpace: Bool) -> Bool {
        unicodeScalars.allSatisfy { ($0.value > 0x20 || (allowingSpace && $0.value == 0x20)) && $0.value < 0x7F }
    }

    /// Whether any character is a C0 control character or DEL (newlines, NUL, escapes).
    public var containsControlCharacters: Bool {
        unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
