"""Ollama's native API (/api/chat, /api/tags)."""
