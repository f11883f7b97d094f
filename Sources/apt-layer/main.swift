import APTLayerCLI
import OSTree

// Blocks SIGINT/SIGTERM before any other thread exists, so every thread inherits the mask and a
// verb's `sigwait` thread takes them (Ctrl-C cancels a transaction instead of killing us).
GLibText.useUTF8()
SignalCancellation.blockInThisThreadAndChildren()
APTLayer.main()
