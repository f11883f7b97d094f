import APTLayerAgent

// The agent as its own program (development builds and tests); the package ships it as a symlink
// to `apt-layer`, which runs the same command when started by this name.
AgentCommand.runAsProgram()
