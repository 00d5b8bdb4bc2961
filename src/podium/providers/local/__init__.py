"""The embedded local provider: llama.cpp over GGUF weights, and all-MiniLM-L6-v2 embeddings in numpy (minilm)."""
