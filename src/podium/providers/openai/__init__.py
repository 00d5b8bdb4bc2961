"""The OpenAI Chat Completions wire: spoken by OpenAI and every OpenAI-compatible host."""
